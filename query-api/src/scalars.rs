//! GraphQL scalars and enums mirroring the event contract.

use async_graphql::{Enum, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::NaiveDate;
use events::coverage;
use events::customer;

/// A calendar date, ISO `YYYY-MM-DD` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                Ok(day) if events::dates::plausible(day) => Ok(Date(day)),
                Ok(_) => Err(InputValueError::custom(events::dates::implausible(&format!(
                    "`{text}`"
                )))),
                Err(_) => Err(InputValueError::custom(format!(
                    "`{text}` is not a date in YYYY-MM-DD form"
                ))),
            },
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Enterprise,
    MidMarket,
    Smb,
}

impl From<customer::Tier> for Tier {
    fn from(tier: customer::Tier) -> Self {
        match tier {
            customer::Tier::Enterprise => Tier::Enterprise,
            customer::Tier::MidMarket => Tier::MidMarket,
            customer::Tier::Smb => Tier::Smb,
        }
    }
}

impl From<Tier> for customer::Tier {
    fn from(tier: Tier) -> Self {
        match tier {
            Tier::Enterprise => customer::Tier::Enterprise,
            Tier::MidMarket => customer::Tier::MidMarket,
            Tier::Smb => customer::Tier::Smb,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoverageStatus {
    UnderCovered,
    WellCovered,
    OverCovered,
}

impl From<coverage::CoverageStatus> for CoverageStatus {
    fn from(status: coverage::CoverageStatus) -> Self {
        match status {
            coverage::CoverageStatus::UnderCovered => CoverageStatus::UnderCovered,
            coverage::CoverageStatus::WellCovered => CoverageStatus::WellCovered,
            coverage::CoverageStatus::OverCovered => CoverageStatus::OverCovered,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Urgent,
    Attention,
    Ok,
}

impl From<coverage::Priority> for Priority {
    fn from(priority: coverage::Priority) -> Self {
        match priority {
            coverage::Priority::Urgent => Priority::Urgent,
            coverage::Priority::Attention => Priority::Attention,
            coverage::Priority::Ok => Priority::Ok,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapArea {
    Contact,
    Touches,
    Meetings,
    Stakeholders,
}

impl From<coverage::GapArea> for GapArea {
    fn from(area: coverage::GapArea) -> Self {
        match area {
            coverage::GapArea::Contact => GapArea::Contact,
            coverage::GapArea::Touches => GapArea::Touches,
            coverage::GapArea::Meetings => GapArea::Meetings,
            coverage::GapArea::Stakeholders => GapArea::Stakeholders,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthColour {
    Green,
    Yellow,
    Red,
}

impl From<coverage::HealthColour> for HealthColour {
    fn from(colour: coverage::HealthColour) -> Self {
        match colour {
            coverage::HealthColour::Green => HealthColour::Green,
            coverage::HealthColour::Yellow => HealthColour::Yellow,
            coverage::HealthColour::Red => HealthColour::Red,
        }
    }
}
