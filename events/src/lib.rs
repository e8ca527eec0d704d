//! The cstrack event contract.
//!
//! Everything that crosses a service boundary lives here: the events of each stream with their
//! versions, the metadata every event carries, the envelope the relay publishes, the names of the
//! broker topology, and the pure formulas of docs/DOMAIN.md that more than one service evaluates.

pub mod alert;
pub mod coverage;
pub mod csm;
pub mod customer;
pub mod dates;
pub mod engagement;
pub mod envelope;
pub mod fields;
pub mod metadata;
pub mod partner;
pub mod playbook;
pub mod reminder;
pub mod risk;
pub mod rules;
pub mod schema;
pub mod task_template;
pub mod timeline;
pub mod topology;
pub mod upcast;

#[cfg(feature = "service")]
pub mod service;

pub use csm::CsmEvent;
pub use customer::CustomerEvent;
pub use envelope::EventEnvelope;
pub use metadata::{Actor, EventMetadata, Source};

#[cfg(test)]
mod schema_drift {
    //! The checked-in JSON Schemas must be what the code generates. Regenerate with
    //! `UPDATE_SCHEMAS=1 cargo test -p events`.

    use std::path::PathBuf;

    #[test]
    fn checked_in_event_schemas_match_the_code() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        for file in crate::schema::all() {
            let path = root.join(&file.path);
            let expected = crate::schema::render(&file.schema);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &expected).unwrap();
                continue;
            }
            let actual = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!(
                    "{} is missing: run UPDATE_SCHEMAS=1 cargo test -p events",
                    path.display()
                )
            });
            assert_eq!(
                actual, expected,
                "{} drifted from the code: run UPDATE_SCHEMAS=1 cargo test -p events",
                file.path
            );
        }
    }
}
