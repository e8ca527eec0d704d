//! The `CustomFields` aggregate: the definitions of a team's custom fields (docs/DOMAIN.md
//! section 9). One stream; every definition, change and retirement is an event on it.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::fields::*;
use events::metadata::Role;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::permissions::Operation;
use super::{CommandError, DomainServices, Guarded};

/// A definition as a client sends it; roles default to everyone seeing and the team editing.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefineField {
    /// Lower-case letters, digits and `_`, starting with a letter.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z][a-z0-9_]*$"))]
    pub key: String,
    #[schemars(length(max = 100), pattern(crate::domain::VISIBLE))]
    pub label: String,
    #[serde(default = "general")]
    #[schemars(length(max = 100), pattern(crate::domain::VISIBLE))]
    pub section: String,
    pub field_type: FieldType,
    /// A select field's choices (1 to 100 distinct texts); other fields have none.
    #[serde(default)]
    #[schemars(length(max = 100), inner(length(max = 100), pattern(crate::domain::VISIBLE)), extend("uniqueItems" = true))]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    #[schemars(with = "Option<crate::domain::FieldValue>")]
    pub default: Option<Value>,
    #[serde(default = "everyone")]
    pub visible_to: Vec<Role>,
    /// Roles that issue commands: readonly users and auditors edit nothing.
    #[serde(default = "team")]
    #[schemars(extend("items" = {"type": "string", "enum": ["admin", "manager", "csm", "partner"]}))]
    pub editable_by: Vec<Role>,
    #[serde(default)]
    pub condition: Option<FieldCondition>,
}

fn general() -> String {
    "General".to_owned()
}

fn everyone() -> Vec<Role> {
    Role::ALL.to_vec()
}

fn team() -> Vec<Role> {
    vec![Role::Admin, Role::Manager, Role::Csm]
}

impl DefineField {
    fn definition(self) -> FieldDefinition {
        let mut visible_to = self.visible_to;
        visible_to.sort();
        visible_to.dedup();
        let mut editable_by = self.editable_by;
        editable_by.sort();
        editable_by.dedup();
        FieldDefinition {
            key: self.key,
            label: self.label.trim().to_owned(),
            section: self.section.trim().to_owned(),
            field_type: self.field_type,
            options: self.options.iter().map(|option| option.trim().to_owned()).collect(),
            required: self.required,
            default: self.default.filter(|value| !value.is_null()),
            visible_to,
            editable_by,
            condition: self.condition,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FieldsCommand {
    Define(DefineField),
    /// The whole definition as it should stand; `key` comes from the path.
    Change(DefineField),
    Retire {
        key: String,
    },
    /// Every key in force, each once, in the order they are to be shown.
    Reorder(Reorder),
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reorder {
    /// Every custom field in force, each once, in the order they are to be shown.
    #[schemars(length(max = 200))]
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CustomFields {
    definitions: Definitions,
}

fn rejected(error: FieldError) -> CommandError {
    CommandError::Invalid {
        code: error.code,
        field: error.field,
        message: error.message,
    }
}

impl CustomFields {
    fn checked(&self, definition: FieldDefinition) -> Result<FieldDefinition, CommandError> {
        check_definition(&definition, &self.definitions).map_err(rejected)?;
        if let Some(role) = definition
            .editable_by
            .iter()
            .find(|role| matches!(role, Role::Readonly | Role::Auditor))
        {
            return Err(CommandError::invalid(
                "invalid_roles",
                "editable_by",
                format!("the {} role issues no commands", role.as_str()),
            ));
        }
        Ok(definition)
    }
}

impl Aggregate for CustomFields {
    const TYPE: &'static str = CustomFieldEvent::STREAM_TYPE;
    type Command = FieldsCommand;
    type Event = CustomFieldEvent;
    type Error = CommandError;
    type Services = DomainServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let occurred_at = services.clock.now();
        let event = match command {
            FieldsCommand::Define(define) => {
                let definition = self.checked(define.definition())?;
                if self.definitions.get(&definition.key).is_some() || self.definitions.retired.contains(&definition.key)
                {
                    return Err(CommandError::conflict(
                        "field_exists",
                        format!(
                            "a custom field {} exists or existed; keys are never reused",
                            definition.key
                        ),
                    ));
                }
                if self.definitions.fields.len() >= MAX_DEFINITIONS {
                    return Err(CommandError::conflict(
                        "too_many_fields",
                        format!("at most {MAX_DEFINITIONS} custom fields are in force at once"),
                    ));
                }
                CustomFieldEvent::CustomFieldDefined(CustomFieldDefined {
                    definition,
                    occurred_at,
                })
            }
            FieldsCommand::Change(change) => {
                let definition = self.checked(change.definition())?;
                let Some(current) = self.definitions.get(&definition.key) else {
                    return Err(CommandError::NotFound { entity: "custom field" });
                };
                if current.field_type != definition.field_type {
                    return Err(CommandError::invalid(
                        "type_change_not_allowed",
                        "field_type",
                        "a field's type never changes (its values stay in history); retire it and define another",
                    ));
                }
                super::require_change(*current != definition)?;
                CustomFieldEvent::CustomFieldChanged(CustomFieldChanged {
                    definition,
                    occurred_at,
                })
            }
            FieldsCommand::Retire { key } => {
                if self.definitions.get(&key).is_none() {
                    return Err(CommandError::NotFound { entity: "custom field" });
                }
                if let Some(dependent) = self
                    .definitions
                    .fields
                    .iter()
                    .find(|field| field.condition.as_ref().is_some_and(|condition| condition.field == key))
                {
                    return Err(CommandError::conflict(
                        "field_in_use",
                        format!("{} is shown on a condition of {key}; change it first", dependent.key),
                    ));
                }
                CustomFieldEvent::CustomFieldRetired(CustomFieldRetired { key, occurred_at })
            }
            FieldsCommand::Reorder(Reorder { keys }) => {
                let in_force: std::collections::BTreeSet<&str> =
                    self.definitions.fields.iter().map(|field| field.key.as_str()).collect();
                let named: std::collections::BTreeSet<&str> = keys.iter().map(String::as_str).collect();
                if named.len() != keys.len() || named != in_force {
                    return Err(CommandError::invalid(
                        "invalid_order",
                        "keys",
                        "name every custom field in force, each once",
                    ));
                }
                let current: Vec<&str> = self.definitions.fields.iter().map(|field| field.key.as_str()).collect();
                super::require_change(current != keys.iter().map(String::as_str).collect::<Vec<_>>())?;
                CustomFieldEvent::CustomFieldsReordered(CustomFieldsReordered { keys, occurred_at })
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.definitions.apply(&event);
    }
}

impl Guarded for CustomFields {
    fn operation(_command: &FieldsCommand) -> Operation {
        Operation::DefineCustomFields
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;
    use serde_json::json;

    use super::*;
    use crate::domain::fixed;

    fn define(key: &str, field_type: FieldType) -> DefineField {
        serde_json::from_value(json!({"key": key, "label": key, "field_type": field_type})).unwrap()
    }

    #[tokio::test]
    async fn keys_are_never_reused_and_types_never_change() {
        let test = || TestFramework::<CustomFields>::with(fixed::services(vec![]));
        let defined = CustomFieldEvent::CustomFieldDefined(CustomFieldDefined {
            definition: define("segment", FieldType::Text).definition(),
            occurred_at: fixed::NOW.parse().unwrap(),
        });
        test()
            .given(vec![defined.clone()])
            .when_async(FieldsCommand::Define(define("segment", FieldType::Text)))
            .await
            .then_expect_error_message("a custom field segment exists or existed; keys are never reused");
        test()
            .given(vec![defined.clone()])
            .when_async(FieldsCommand::Change(define("segment", FieldType::Number)))
            .await
            .then_expect_error_message(
                "a field's type never changes (its values stay in history); retire it and define another",
            );
        let retired = CustomFieldEvent::CustomFieldRetired(CustomFieldRetired {
            key: "segment".into(),
            occurred_at: fixed::NOW.parse().unwrap(),
        });
        test()
            .given(vec![defined, retired])
            .when_async(FieldsCommand::Define(define("segment", FieldType::Text)))
            .await
            .then_expect_error_message("a custom field segment exists or existed; keys are never reused");
        let mut select = define("plan", FieldType::SingleSelect);
        select.editable_by = vec![Role::Auditor];
        select.options = vec!["a".into()];
        test()
            .given_no_previous_events()
            .when_async(FieldsCommand::Define(select))
            .await
            .then_expect_error_message("the auditor role issues no commands");
    }
}
