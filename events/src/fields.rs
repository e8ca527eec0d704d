//! Custom fields: typed, grouped, role-aware facts a team adds to its customers (docs/DOMAIN.md
//! section 9). Definitions are events of the one `CustomFields` stream (id [`FIELDS_STREAM_ID`]);
//! values are `CustomFieldsSet` events on each customer's stream, checked against the
//! definitions in force when they were set.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metadata::Role;

pub const FIELDS_STREAM_ID: &str = "custom-fields";
/// Most definitions in force at once (retired ones do not count).
pub const MAX_DEFINITIONS: usize = 200;
pub const MAX_OPTIONS: usize = 100;
const MAX_TEXT: usize = 500;
const MAX_LONG_TEXT: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    LongText,
    Number,
    Currency,
    Percent,
    Date,
    SingleSelect,
    MultiSelect,
    Checkbox,
    Url,
    Email,
    /// A user id (the `sub` of the user's token).
    User,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::LongText => "long_text",
            FieldType::Number => "number",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Date => "date",
            FieldType::SingleSelect => "single_select",
            FieldType::MultiSelect => "multi_select",
            FieldType::Checkbox => "checkbox",
            FieldType::Url => "url",
            FieldType::Email => "email",
            FieldType::User => "user",
        }
    }

    pub fn is_select(self) -> bool {
        matches!(self, FieldType::SingleSelect | FieldType::MultiSelect)
    }

    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Number | FieldType::Currency | FieldType::Percent)
    }
}

/// Shown (and required) only while another field holds a given value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FieldCondition {
    /// Key of the controlling field.
    pub field: String,
    pub equals: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FieldDefinition {
    /// Lower-case letters, digits and `_`, starting with a letter; at most 63 characters.
    pub key: String,
    pub label: String,
    /// The group the field is shown in.
    pub section: String,
    pub field_type: FieldType,
    /// The choices of a select field.
    pub options: Vec<String>,
    pub required: bool,
    pub default: Option<Value>,
    /// Roles that see the field (admins always do).
    pub visible_to: Vec<Role>,
    /// Roles that may set it (admins always may); each must also see it.
    pub editable_by: Vec<Role>,
    pub condition: Option<FieldCondition>,
}

impl FieldDefinition {
    pub fn visible_to(&self, role: Role) -> bool {
        role == Role::Admin || self.visible_to.contains(&role)
    }

    pub fn editable_by(&self, role: Role) -> bool {
        role == Role::Admin || (self.editable_by.contains(&role) && self.visible_to(role))
    }

    /// Whether the condition (if any) holds for a customer's values.
    pub fn applies(&self, values: &BTreeMap<String, Value>, definitions: &Definitions) -> bool {
        let Some(condition) = &self.condition else { return true };
        let current = definitions.effective(&condition.field, values);
        current.as_ref() == Some(&condition.equals)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomFieldDefined {
    pub definition: FieldDefinition,
    pub occurred_at: DateTime<Utc>,
}

/// The whole definition as it now stands (its type never changes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomFieldChanged {
    pub definition: FieldDefinition,
    pub occurred_at: DateTime<Utc>,
}

/// Retired fields are hidden and take no new values; their values stay in history and the key
/// is never reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomFieldRetired {
    pub key: String,
    pub occurred_at: DateTime<Utc>,
}

/// The order the fields in force are shown in (the 360, forms, exports): every key in force,
/// each once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CustomFieldsReordered {
    pub keys: Vec<String>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CustomFieldEvent {
    CustomFieldDefined(CustomFieldDefined),
    CustomFieldChanged(CustomFieldChanged),
    CustomFieldRetired(CustomFieldRetired),
    CustomFieldsReordered(CustomFieldsReordered),
}

impl CustomFieldEvent {
    pub const STREAM_TYPE: &'static str = "CustomFields";
}

impl DomainEvent for CustomFieldEvent {
    fn event_type(&self) -> String {
        match self {
            CustomFieldEvent::CustomFieldDefined(_) => "CustomFieldDefined",
            CustomFieldEvent::CustomFieldChanged(_) => "CustomFieldChanged",
            CustomFieldEvent::CustomFieldRetired(_) => "CustomFieldRetired",
            CustomFieldEvent::CustomFieldsReordered(_) => "CustomFieldsReordered",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

/// The definitions in force, folded from the `CustomFields` stream, in definition order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Definitions {
    pub fields: Vec<FieldDefinition>,
    /// Keys of retired fields: never reused.
    pub retired: Vec<String>,
    /// Retired fields as they last stood, so their values in history stay hidden from the
    /// roles that could not see them.
    #[serde(default)]
    pub retired_fields: Vec<FieldDefinition>,
}

impl Definitions {
    pub fn apply(&mut self, event: &CustomFieldEvent) {
        match event {
            CustomFieldEvent::CustomFieldDefined(defined) => self.fields.push(defined.definition.clone()),
            CustomFieldEvent::CustomFieldChanged(changed) => {
                if let Some(field) = self.fields.iter_mut().find(|f| f.key == changed.definition.key) {
                    *field = changed.definition.clone();
                }
            }
            CustomFieldEvent::CustomFieldRetired(retired) => {
                if let Some(at) = self.fields.iter().position(|field| field.key == retired.key) {
                    self.retired_fields.push(self.fields.remove(at));
                }
                self.retired.push(retired.key.clone());
            }
            CustomFieldEvent::CustomFieldsReordered(reordered) => {
                // A key not named keeps its place after the named ones (never the case for an
                // event the command accepted, which names every key in force).
                let rank = |key: &str| reordered.keys.iter().position(|k| k == key).unwrap_or(usize::MAX);
                self.fields.sort_by_key(|field| rank(&field.key));
            }
        }
    }

    /// Keys of fields, in force or retired, whose values `role` may not see.
    pub fn hidden_keys(&self, role: Role) -> std::collections::BTreeSet<String> {
        self.fields
            .iter()
            .chain(&self.retired_fields)
            .filter(|field| !field.visible_to(role))
            .map(|field| field.key.clone())
            .collect()
    }

    pub fn get(&self, key: &str) -> Option<&FieldDefinition> {
        self.fields.iter().find(|field| field.key == key)
    }

    /// A field's value for a customer: its own, else the definition's default.
    pub fn effective(&self, key: &str, values: &BTreeMap<String, Value>) -> Option<Value> {
        match values.get(key) {
            Some(Value::Null) | None => self.get(key).and_then(|field| field.default.clone()),
            Some(value) => Some(value.clone()),
        }
    }

    /// Checks a change of a customer's values (`null` clears a field) against the definitions,
    /// for a caller of `role`; answers the values after the change. Unknown or retired keys,
    /// values of the wrong type or outside the options, fields hidden by their condition, and
    /// required fields left empty are refused, naming the field key.
    pub fn check_change(
        &self,
        current: &BTreeMap<String, Value>,
        change: &BTreeMap<String, Value>,
        role: Role,
    ) -> Result<BTreeMap<String, Value>, FieldError> {
        let mut after = current.clone();
        for (key, value) in change {
            let Some(definition) = self.get(key) else {
                let code = if self.retired.contains(key) {
                    "field_retired"
                } else {
                    "unknown_field"
                };
                return Err(FieldError::new(
                    code,
                    key,
                    format!("{key} is not a custom field in force"),
                ));
            };
            if !definition.editable_by(role) {
                return Err(FieldError::forbidden(key));
            }
            if value.is_null() {
                after.remove(key);
            } else {
                after.insert(key.clone(), normalize(definition, value)?);
            }
        }
        for definition in &self.fields {
            let applies = definition.applies(&after, self);
            if change.get(&definition.key).is_some_and(|value| !value.is_null()) && !applies {
                return Err(FieldError::new(
                    "condition_not_met",
                    &definition.key,
                    format!("{} is shown only when its condition holds", definition.key),
                ));
            }
            let touched = change.contains_key(&definition.key)
                || definition
                    .condition
                    .as_ref()
                    .is_some_and(|condition| change.contains_key(&condition.field));
            if definition.required && applies && touched && self.effective(&definition.key, &after).is_none() {
                return Err(FieldError::new(
                    "required",
                    &definition.key,
                    format!("{} is required", definition.key),
                ));
            }
        }
        Ok(after)
    }

    /// The values a role may see, with defaults filled in and fields hidden by their condition
    /// left out, in definition order.
    pub fn visible<'a>(
        &'a self,
        values: &BTreeMap<String, Value>,
        role: Role,
    ) -> Vec<(&'a FieldDefinition, Option<Value>)> {
        self.fields
            .iter()
            .filter(|field| field.visible_to(role) && field.applies(values, self))
            .map(|field| (field, self.effective(&field.key, values)))
            .collect()
    }
}

/// Why a value or a definition was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub code: &'static str,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        FieldError {
            code,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The caller's role may not set this field.
    pub fn forbidden(field: &str) -> Self {
        FieldError::new("field_not_editable", field, format!("your role may not set {field}"))
    }

    pub fn is_forbidden(&self) -> bool {
        self.code == "field_not_editable"
    }
}

/// A value as stored: text types as trimmed strings, numbers as JSON numbers, currency as a
/// decimal string with at most two places, dates as `YYYY-MM-DD`, multi selects as arrays of
/// distinct options, checkboxes as booleans.
pub fn normalize(definition: &FieldDefinition, value: &Value) -> Result<Value, FieldError> {
    let key = definition.key.as_str();
    let wrong = |expected: &str| FieldError::new("invalid_value", key, format!("{key} must be {expected}"));
    let text = |limit: usize| -> Result<String, FieldError> {
        let text = value.as_str().ok_or_else(|| wrong("text"))?.trim();
        if text.is_empty() {
            return Err(wrong("non-empty text (null clears a field)"));
        }
        if text.chars().count() > limit || text.contains('\0') {
            return Err(FieldError::new(
                "invalid_value",
                key,
                format!("{key} is at most {limit} characters of text"),
            ));
        }
        Ok(text.to_owned())
    };
    Ok(match definition.field_type {
        FieldType::Text | FieldType::User => Value::String(text(MAX_TEXT)?),
        FieldType::LongText => Value::String(text(MAX_LONG_TEXT)?),
        FieldType::Number | FieldType::Percent => {
            let number = value
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or_else(|| wrong("a number"))?;
            if number.abs() > 1e15 {
                return Err(wrong("a number of at most 1e15"));
            }
            serde_json::json!(number)
        }
        FieldType::Currency => {
            let decimal = match value {
                Value::Number(number) => number.to_string().parse::<Decimal>().ok(),
                Value::String(text) => text.trim().parse::<Decimal>().ok(),
                _ => None,
            }
            .filter(|amount| amount.scale() <= 2 && amount.abs() < Decimal::from(1_000_000_000_000_i64))
            .ok_or_else(|| wrong("an amount with at most two decimal places"))?;
            Value::String(decimal.round_dp(2).to_string())
        }
        FieldType::Date => {
            let text = value.as_str().ok_or_else(|| wrong("a date (YYYY-MM-DD)"))?;
            let day = text
                .parse::<NaiveDate>()
                .ok()
                .filter(|day| crate::dates::plausible(*day))
                .ok_or_else(|| wrong("a date (YYYY-MM-DD) between 1970 and 2099"))?;
            Value::String(day.to_string())
        }
        FieldType::Checkbox => Value::Bool(value.as_bool().ok_or_else(|| wrong("true or false"))?),
        FieldType::SingleSelect => {
            let choice = value.as_str().ok_or_else(|| wrong("one of its options"))?;
            if !definition.options.iter().any(|option| option == choice) {
                return Err(FieldError::new(
                    "invalid_option",
                    key,
                    format!("{key} must be one of: {}", definition.options.join(", ")),
                ));
            }
            Value::String(choice.to_owned())
        }
        FieldType::MultiSelect => {
            let choices = value.as_array().ok_or_else(|| wrong("a list of its options"))?;
            let mut chosen: Vec<Value> = Vec::new();
            for choice in choices {
                let choice = choice.as_str().ok_or_else(|| wrong("a list of its options"))?;
                if !definition.options.iter().any(|option| option == choice) {
                    return Err(FieldError::new(
                        "invalid_option",
                        key,
                        format!("{key}: {choice:?} is not one of: {}", definition.options.join(", ")),
                    ));
                }
                if !chosen.iter().any(|known| known == choice) {
                    chosen.push(Value::String(choice.to_owned()));
                }
            }
            Value::Array(chosen)
        }
        FieldType::Url => {
            let url = text(2000)?;
            let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if !host.is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace)) {
                return Err(wrong("an http or https URL"));
            }
            Value::String(url)
        }
        FieldType::Email => {
            let address = text(320)?;
            let valid = address.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            }) && !address.contains(char::is_whitespace);
            if !valid {
                return Err(wrong("an e-mail address"));
            }
            Value::String(address)
        }
    })
}

/// Checks a definition on its own and against the others in force.
pub fn check_definition(definition: &FieldDefinition, others: &Definitions) -> Result<(), FieldError> {
    let key = definition.key.as_str();
    let valid_key = key.len() <= 63
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_key {
        return Err(FieldError::new(
            "invalid_key",
            "key",
            "key is 1 to 63 lower-case letters, digits or _, starting with a letter",
        ));
    }
    for (name, value, limit) in [("label", &definition.label, 100), ("section", &definition.section, 100)] {
        if value.trim().is_empty() || value.chars().count() > limit || value.contains('\0') {
            return Err(FieldError::new(
                "invalid_text",
                name,
                format!("{name} is 1 to {limit} characters"),
            ));
        }
    }
    if definition.field_type.is_select() {
        if definition.options.is_empty() || definition.options.len() > MAX_OPTIONS {
            return Err(FieldError::new(
                "invalid_options",
                "options",
                format!("a select field has 1 to {MAX_OPTIONS} options"),
            ));
        }
        for (index, option) in definition.options.iter().enumerate() {
            if option.trim().is_empty() || option.chars().count() > 100 || definition.options[..index].contains(option)
            {
                return Err(FieldError::new(
                    "invalid_options",
                    "options",
                    "options are distinct texts of 1 to 100 characters",
                ));
            }
        }
    } else if !definition.options.is_empty() {
        return Err(FieldError::new(
            "invalid_options",
            "options",
            "only select fields have options",
        ));
    }
    if let Some(default) = &definition.default {
        normalize(definition, default).map_err(|error| FieldError::new(error.code, "default", error.message))?;
    }
    if let Some(condition) = &definition.condition {
        let Some(controlling) = others.get(&condition.field).filter(|field| field.key != key) else {
            return Err(FieldError::new(
                "invalid_condition",
                "condition.field",
                "a condition names another custom field in force",
            ));
        };
        normalize(controlling, &condition.equals)
            .map_err(|error| FieldError::new("invalid_condition", "condition.equals", error.message))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(key: &str, field_type: FieldType) -> FieldDefinition {
        FieldDefinition {
            key: key.into(),
            label: key.into(),
            section: "General".into(),
            field_type,
            options: Vec::new(),
            required: false,
            default: None,
            visible_to: Role::ALL.to_vec(),
            editable_by: vec![Role::Manager, Role::Csm],
            condition: None,
        }
    }

    fn values(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.clone()))
            .collect()
    }

    #[test]
    fn values_are_normalized_by_type() {
        let currency = field("budget", FieldType::Currency);
        assert_eq!(normalize(&currency, &json!("1200.5")).unwrap(), json!("1200.5"));
        assert_eq!(normalize(&currency, &json!(12.25)).unwrap(), json!("12.25"));
        assert_eq!(normalize(&currency, &json!("1.234")).unwrap_err().code, "invalid_value");
        let date = field("kickoff", FieldType::Date);
        assert_eq!(normalize(&date, &json!("2026-02-30")).unwrap_err().field, "kickoff");
        let mut multi = field("regions", FieldType::MultiSelect);
        multi.options = vec!["EMEA".into(), "APAC".into()];
        assert_eq!(
            normalize(&multi, &json!(["EMEA", "EMEA", "APAC"])).unwrap(),
            json!(["EMEA", "APAC"])
        );
        assert_eq!(normalize(&multi, &json!(["US"])).unwrap_err().code, "invalid_option");
        assert_eq!(
            normalize(&field("site", FieldType::Url), &json!("ftp://x"))
                .unwrap_err()
                .code,
            "invalid_value"
        );
        assert_eq!(
            normalize(&field("n", FieldType::Number), &json!("3")).unwrap_err().code,
            "invalid_value"
        );
    }

    #[test]
    fn conditions_gate_values_and_requirements() {
        let mut plan = field("plan", FieldType::SingleSelect);
        plan.options = vec!["self_serve".into(), "managed".into()];
        let mut manager = field("account_team", FieldType::Text);
        manager.required = true;
        manager.condition = Some(FieldCondition {
            field: "plan".into(),
            equals: json!("managed"),
        });
        let definitions = Definitions {
            fields: vec![plan, manager],
            retired: vec!["old".into()],
            retired_fields: Vec::new(),
        };
        let none = BTreeMap::new();
        let error = definitions
            .check_change(&none, &values(&[("plan", json!("managed"))]), Role::Csm)
            .unwrap_err();
        assert_eq!((error.code, error.field.as_str()), ("required", "account_team"));
        let error = definitions
            .check_change(&none, &values(&[("account_team", json!("Ops"))]), Role::Csm)
            .unwrap_err();
        assert_eq!(error.code, "condition_not_met");
        let after = definitions
            .check_change(
                &none,
                &values(&[("plan", json!("managed")), ("account_team", json!(" Ops "))]),
                Role::Csm,
            )
            .unwrap();
        assert_eq!(after["account_team"], json!("Ops"));
        assert!(definitions
            .check_change(&none, &values(&[("plan", json!("managed"))]), Role::Readonly)
            .unwrap_err()
            .is_forbidden());
        assert_eq!(
            definitions
                .check_change(&none, &values(&[("old", json!(1))]), Role::Csm)
                .unwrap_err()
                .code,
            "field_retired"
        );
        assert_eq!(
            definitions
                .visible(&values(&[("plan", json!("self_serve"))]), Role::Csm)
                .len(),
            1
        );
    }
}
