//! Tasks: created with a kind, priority, assignee, due date, parent and dependencies; updated,
//! reassigned, started, completed with an outcome or cancelled. A completed or cancelled task is
//! closed and takes no further change.

use events::customer::*;
use uuid::Uuid;

use super::{Customer, Task, TaskState, MAX_LIST_ITEMS};
use crate::domain::customer::commands::*;
use crate::domain::{optional_text, require_change, required_text, CommandError, DomainServices};

impl Customer {
    fn task(&self, task_id: Uuid) -> Result<&Task, CommandError> {
        self.tasks
            .get(&task_id)
            .ok_or(CommandError::NotFound { entity: "task" })
    }

    /// An open task, or why it takes no change.
    fn open_task(&self, task_id: Uuid) -> Result<&Task, CommandError> {
        let task = self.task(task_id)?;
        match task.state {
            TaskState::Open(_) => Ok(task),
            TaskState::Completed => Err(CommandError::conflict(
                "task_completed",
                "this task is already completed",
            )),
            TaskState::Cancelled => Err(CommandError::conflict("task_cancelled", "this task is cancelled")),
        }
    }

    pub(super) fn set_task_state(&mut self, task_id: Uuid, state: TaskState) {
        if let Some(task) = self.tasks.get_mut(&task_id) {
            task.state = state;
        }
    }

    /// Dependencies must be tasks of this customer, not the task itself, and form no cycle.
    fn dependencies(&self, task_id: Uuid, depends_on: &[Uuid]) -> Result<Vec<Uuid>, CommandError> {
        if depends_on.len() > MAX_LIST_ITEMS {
            return Err(CommandError::invalid(
                "too_many",
                "depends_on",
                "at most 50 dependencies",
            ));
        }
        if let Some(unknown) = depends_on.iter().find(|id| !self.tasks.contains_key(id)) {
            return Err(CommandError::invalid(
                "unknown_task",
                "depends_on",
                format!("task {unknown} does not exist"),
            ));
        }
        if depends_on
            .iter()
            .any(|dependency| *dependency == task_id || self.depends_transitively(*dependency, task_id))
        {
            return Err(CommandError::invalid(
                "dependency_cycle",
                "depends_on",
                "these dependencies would form a cycle",
            ));
        }
        let mut depends_on = depends_on.to_vec();
        depends_on.sort_unstable();
        depends_on.dedup();
        Ok(depends_on)
    }

    /// Whether `task` depends on `target`, directly or through other tasks.
    fn depends_transitively(&self, task: Uuid, target: Uuid) -> bool {
        let mut stack = vec![task];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(current) = stack.pop() {
            if current == target {
                return true;
            }
            if seen.insert(current) {
                if let Some(task) = self.tasks.get(&current) {
                    stack.extend(task.depends_on.iter().copied());
                }
            }
        }
        false
    }

    pub(super) fn create_task(
        &self,
        command: CreateTask,
        services: &DomainServices,
    ) -> Result<TaskCreated, CommandError> {
        self.id()?;
        let task_id = command.task_id.unwrap_or_else(Uuid::now_v7);
        if self.tasks.contains_key(&task_id) {
            return Err(CommandError::conflict(
                "task_exists",
                "a task with this id already exists",
            ));
        }
        if let Some(parent) = command.parent_task_id.filter(|parent| !self.tasks.contains_key(parent)) {
            return Err(CommandError::invalid(
                "unknown_task",
                "parent_task_id",
                format!("task {parent} does not exist"),
            ));
        }
        Ok(TaskCreated {
            task_id,
            title: required_text(&command.title, "title", 200)?,
            description: optional_text(&command.description, "description", 5000)?,
            kind: command.kind,
            priority: command.priority,
            assignee_id: required_text(&command.assignee_id, "assignee_id", 200)?,
            due_date: command.due_date,
            parent_task_id: command.parent_task_id,
            depends_on: self.dependencies(task_id, &command.depends_on)?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn update_task(
        &self,
        command: UpdateTask,
        services: &DomainServices,
    ) -> Result<TaskUpdated, CommandError> {
        self.id()?;
        self.open_task(command.task_id)?;
        let event = TaskUpdated {
            task_id: command.task_id,
            title: command
                .title
                .as_deref()
                .map(|title| required_text(title, "title", 200))
                .transpose()?,
            description: command
                .description
                .as_deref()
                .map(|text| optional_text(text, "description", 5000))
                .transpose()?,
            kind: command.kind,
            priority: command.priority,
            due_date: command.due_date,
            depends_on: command
                .depends_on
                .as_deref()
                .map(|ids| self.dependencies(command.task_id, ids))
                .transpose()?,
            occurred_at: services.clock.now(),
        };
        require_change(
            event.title.is_some()
                || event.description.is_some()
                || event.kind.is_some()
                || event.priority.is_some()
                || event.due_date.is_some()
                || event.depends_on.is_some(),
        )?;
        Ok(event)
    }

    pub(super) fn reassign_task(
        &self,
        command: ReassignTask,
        services: &DomainServices,
    ) -> Result<TaskReassigned, CommandError> {
        self.id()?;
        let task = self.open_task(command.task_id)?;
        let assignee_id = required_text(&command.assignee_id, "assignee_id", 200)?;
        if assignee_id == task.assignee_id {
            return Err(CommandError::invalid(
                "assignee_unchanged",
                "assignee_id",
                "the task already has this assignee",
            ));
        }
        Ok(TaskReassigned {
            task_id: command.task_id,
            assignee_id,
            previous_assignee_id: task.assignee_id.clone(),
            reason: command
                .reason
                .as_deref()
                .map(|reason| optional_text(reason, "reason", 1000))
                .transpose()?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn change_task_status(
        &self,
        command: ChangeTaskStatus,
        services: &DomainServices,
    ) -> Result<TaskStatusChanged, CommandError> {
        self.id()?;
        let task = self.open_task(command.task_id)?;
        if task.state == TaskState::Open(command.status) {
            return Err(CommandError::invalid(
                "status_unchanged",
                "status",
                "the task already has this status",
            ));
        }
        Ok(TaskStatusChanged {
            task_id: command.task_id,
            status: command.status,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn complete_task(
        &self,
        command: CompleteTask,
        services: &DomainServices,
    ) -> Result<TaskCompleted, CommandError> {
        self.id()?;
        let task = self.open_task(command.task_id)?;
        let open_dependency = task.depends_on.iter().find(|dependency| {
            self.tasks
                .get(dependency)
                .is_some_and(|task| matches!(task.state, TaskState::Open(_)))
        });
        if let Some(dependency) = open_dependency {
            return Err(CommandError::conflict(
                "dependencies_open",
                format!("task {dependency} must be completed or cancelled first"),
            ));
        }
        Ok(TaskCompleted {
            task_id: command.task_id,
            outcome: required_text(&command.outcome, "outcome", 2000)?,
            occurred_at: services.clock.now(),
        })
    }

    pub(super) fn cancel_task(
        &self,
        command: CancelTask,
        services: &DomainServices,
    ) -> Result<TaskCancelled, CommandError> {
        self.id()?;
        self.open_task(command.task_id)?;
        Ok(TaskCancelled {
            task_id: command.task_id,
            reason: required_text(&command.reason, "reason", 1000)?,
            occurred_at: services.clock.now(),
        })
    }
}
