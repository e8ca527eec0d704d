//! Custom fields in GraphQL (docs/DOMAIN.md section 9): the definitions a caller may see, each
//! customer's visible values, and filters and sorts of the customers list by a field. A field a
//! role may not see is absent from every answer it gets, as if it did not exist.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use async_graphql::{Context, InputObject, Json, Result, SimpleObject};
use events::fields::{Definitions, FieldDefinition, FieldType};
use events::metadata::Role;
use serde_json::Value;

use crate::customers::Store;
use crate::schema::{bad_input, coded_error};

/// The one key of the definitions loader: definitions are read once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DefinitionsInForce;

impl Loader<DefinitionsInForce> for Store {
    type Value = Arc<Definitions>;
    type Error = String;

    async fn load(
        &self,
        _keys: &[DefinitionsInForce],
    ) -> Result<std::collections::HashMap<DefinitionsInForce, Arc<Definitions>>, String> {
        let definitions = events::service::read_models::custom_field_definitions(&self.0, None)
            .await
            .map_err(|error| error.to_string())?;
        Ok([(DefinitionsInForce, Arc::new(definitions))].into())
    }
}

/// The definitions in force, once per request.
pub async fn in_force(ctx: &Context<'_>) -> Result<Arc<Definitions>> {
    ctx.data::<crate::customers::Loaders>()?
        .load_one(DefinitionsInForce)
        .await
        .map_err(|error| coded_error("UNAVAILABLE", error))?
        .ok_or_else(|| coded_error("UNAVAILABLE", "custom-field definitions unavailable"))
}

pub fn role(ctx: &Context<'_>) -> Result<Role> {
    Ok(crate::access::access(ctx)?.principal.role)
}

#[derive(SimpleObject, Debug, Clone)]
pub struct CustomFieldCondition {
    pub field: String,
    pub equals: Json<Value>,
}

#[derive(SimpleObject, Debug, Clone)]
pub struct CustomFieldDefinition {
    pub key: String,
    pub label: String,
    pub section: String,
    /// text, long_text, number, currency, percent, date, single_select, multi_select, checkbox,
    /// url, email or user.
    pub field_type: String,
    pub options: Vec<String>,
    pub required: bool,
    pub default: Option<Json<Value>>,
    pub visible_to: Vec<String>,
    pub editable_by: Vec<String>,
    /// Whether the caller may set it.
    pub editable: bool,
    pub condition: Option<CustomFieldCondition>,
}

impl CustomFieldDefinition {
    pub fn of(definition: &FieldDefinition, role: Role) -> Self {
        let roles = |roles: &[Role]| roles.iter().map(|role| role.as_str().to_owned()).collect();
        CustomFieldDefinition {
            key: definition.key.clone(),
            label: definition.label.clone(),
            section: definition.section.clone(),
            field_type: definition.field_type.as_str().to_owned(),
            options: definition.options.clone(),
            required: definition.required,
            default: definition.default.clone().map(Json),
            visible_to: roles(&definition.visible_to),
            editable_by: roles(&definition.editable_by),
            editable: definition.editable_by(role),
            condition: definition.condition.as_ref().map(|condition| CustomFieldCondition {
                field: condition.field.clone(),
                equals: Json(condition.equals.clone()),
            }),
        }
    }
}

/// One custom field of a customer, as the caller may see it.
#[derive(SimpleObject, Debug, Clone)]
pub struct CustomFieldValue {
    pub key: String,
    pub label: String,
    pub section: String,
    pub field_type: String,
    /// The stored value (the definition's default when the customer has none); null when empty.
    pub value: Option<Json<Value>>,
    /// The value as text for display ("" when empty).
    pub display: String,
    /// Whether the value is the definition's default rather than the customer's own.
    pub is_default: bool,
}

/// A value as a person reads it: options joined, checkboxes as Yes/No, numbers as stored.
pub fn display(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(true) => "Yes".into(),
        Value::Bool(false) => "No".into(),
        Value::Array(items) => items.iter().map(display).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A customer's values the role may see, in definition order.
pub fn visible_values(
    definitions: &Definitions,
    values: &BTreeMap<String, Value>,
    role: Role,
) -> Vec<CustomFieldValue> {
    definitions
        .visible(values, role)
        .into_iter()
        .map(|(definition, value)| CustomFieldValue {
            key: definition.key.clone(),
            label: definition.label.clone(),
            section: definition.section.clone(),
            field_type: definition.field_type.as_str().to_owned(),
            is_default: value.is_some() && values.get(&definition.key).is_none(),
            display: value.as_ref().map(display).unwrap_or_default(),
            value: value.map(Json),
        })
        .collect()
}

/// A filter of the customers list by one custom field; give one of its conditions.
#[derive(InputObject, Debug, Clone)]
pub struct CustomFieldFilter {
    pub key: String,
    /// The field's value is this (for a multi select: it includes this option).
    pub equals: Option<Json<Value>>,
    /// The field's value is one of these (for a multi select: it includes one of them).
    pub one_of: Option<Vec<Json<Value>>>,
    /// Inclusive bounds for number, currency, percent and date fields.
    pub min: Option<Json<Value>>,
    pub max: Option<Json<Value>>,
    /// Part of a text, long text, URL, e-mail or user field, case-insensitive.
    pub contains: Option<String>,
}

/// Sorts the customers list by one custom field (empty values first, ascending).
#[derive(InputObject, Debug, Clone)]
pub struct CustomFieldSort {
    pub key: String,
    #[graphql(default)]
    pub descending: bool,
}

/// The definition of `key` if the role may see it; otherwise the field does not exist for it.
pub fn visible_definition<'a>(
    definitions: &'a Definitions,
    key: &str,
    role: Role,
    field: &'static str,
) -> Result<&'a FieldDefinition> {
    definitions
        .get(key)
        .filter(|definition| definition.visible_to(role))
        .ok_or_else(|| bad_input(field, format!("no custom field {key}")))
}

/// A value of the definition's type, as stored, for comparisons in SQL.
fn normalized(definition: &FieldDefinition, value: &Value, field: &'static str) -> Result<Value> {
    events::fields::normalize(definition, value).map_err(|error| bad_input(field, error.message))
}

/// The SQL of a custom-field filter: a condition over `p.custom_fields` with its parameters,
/// numbered from `next`.
pub struct FilterSql {
    pub condition: String,
    pub parameters: Vec<Value>,
}

/// The effective value of a field in SQL: the customer's own, else the definition's default.
fn effective(key_param: usize, default_param: usize) -> String {
    format!("COALESCE(p.custom_fields -> (${key_param}::jsonb #>> '{{}}'), ${default_param}::jsonb)")
}

pub fn filter_sql(definition: &FieldDefinition, filter: &CustomFieldFilter, next: usize) -> Result<FilterSql> {
    let given = [
        filter.equals.is_some(),
        filter.one_of.is_some(),
        filter.min.is_some() || filter.max.is_some(),
        filter.contains.is_some(),
    ];
    if given.iter().filter(|given| **given).count() != 1 {
        return Err(bad_input(
            "customField",
            "give exactly one of equals, oneOf, min/max or contains",
        ));
    }
    let mut parameters = vec![
        Value::String(definition.key.clone()),
        definition.default.clone().unwrap_or(Value::Null),
    ];
    let value = effective(next, next + 1);
    let param = |parameters: &Vec<Value>| next + parameters.len();
    let multi = definition.field_type == FieldType::MultiSelect;
    let condition = if let Some(Json(equals)) = &filter.equals {
        let at = param(&parameters);
        if multi {
            let option = normalized(definition, &Value::Array(vec![equals.clone()]), "customField.equals")?;
            parameters.push(option);
            format!("{value} @> ${at}::jsonb")
        } else {
            parameters.push(normalized(definition, equals, "customField.equals")?);
            format!("{value} = ${at}::jsonb")
        }
    } else if let Some(one_of) = &filter.one_of {
        if one_of.is_empty() || one_of.len() > 100 {
            return Err(bad_input("customField.oneOf", "oneOf names 1 to 100 values"));
        }
        let at = param(&parameters);
        let values: Vec<Value> = one_of
            .iter()
            .map(|Json(choice)| {
                if multi {
                    normalized(definition, &Value::Array(vec![choice.clone()]), "customField.oneOf")
                } else {
                    normalized(definition, choice, "customField.oneOf")
                }
            })
            .collect::<Result<_>>()?;
        parameters.push(Value::Array(values));
        if multi {
            format!("EXISTS (SELECT 1 FROM jsonb_array_elements(${at}::jsonb) o WHERE {value} @> o)")
        } else {
            format!("{value} IN (SELECT jsonb_array_elements(${at}::jsonb))")
        }
    } else if let Some(contains) = &filter.contains {
        if !matches!(
            definition.field_type,
            FieldType::Text | FieldType::LongText | FieldType::Url | FieldType::Email | FieldType::User
        ) {
            return Err(bad_input("customField.contains", "contains applies to text fields"));
        }
        if contains.chars().count() > crate::customers::MAX_SEARCH_CHARS || contains.contains('\0') {
            return Err(bad_input("customField.contains", "at most 200 characters of text"));
        }
        let at = param(&parameters);
        parameters.push(Value::String(crate::customers::like_pattern(contains)));
        format!("({value} #>> '{{}}') ILIKE (${at}::jsonb #>> '{{}}')")
    } else {
        let numeric = definition.field_type.is_numeric();
        if !numeric && definition.field_type != FieldType::Date {
            return Err(bad_input(
                "customField.min",
                "min and max apply to number, currency, percent and date fields",
            ));
        }
        let cast = if numeric { "numeric" } else { "date" };
        let mut parts = Vec::new();
        for (bound, operator, name) in [
            (&filter.min, ">=", "customField.min"),
            (&filter.max, "<=", "customField.max"),
        ] {
            if let Some(Json(bound)) = bound {
                let at = param(&parameters);
                parameters.push(normalized(definition, bound, name)?);
                parts.push(format!(
                    "({value} #>> '{{}}')::{cast} {operator} (${at}::jsonb #>> '{{}}')::{cast}"
                ));
            }
        }
        parts.join(" AND ")
    };
    Ok(FilterSql { condition, parameters })
}

/// The keyset sort expression (text, ordered like the values) of a custom-field sort.
pub fn sort_key(definition: &FieldDefinition, key_param: usize, default_param: usize) -> String {
    let value = format!("({} #>> '{{}}')", effective(key_param, default_param));
    if definition.field_type.is_numeric() {
        // Numbers are stored within +-1e15: shifted and padded, text order is numeric order.
        format!("COALESCE(lpad(((({value})::numeric + 1000000000000000) * 10000)::numeric(40,0)::text, 30, '0'), '')")
    } else {
        format!("COALESCE(lower({value}), '')")
    }
}
