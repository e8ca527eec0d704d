//! Prometheus gauges of each projector's standing against the store, refreshed at an interval
//! from the same figures `projectionStatus` serves.

use std::time::Duration;

use events::service::read_models::projector_status;
use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};
use sqlx::PgPool;
use tokio::sync::watch;

#[derive(Clone)]
pub struct StatusGauges {
    position: IntGaugeVec,
    lag_events: IntGaugeVec,
    lag_seconds: GaugeVec,
    dead_lettered: IntGaugeVec,
    rebuild_done: IntGaugeVec,
    rebuild_total: IntGaugeVec,
}

impl StatusGauges {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let int = |name: &str, help: &str| -> prometheus::Result<IntGaugeVec> {
            let gauge = IntGaugeVec::new(Opts::new(name, help), &["projector"])?;
            registry.register(Box::new(gauge.clone()))?;
            Ok(gauge)
        };
        let lag_seconds = GaugeVec::new(
            Opts::new(
                "cstrack_projector_lag_seconds",
                "Seconds between the store's newest event and the newest applied",
            ),
            &["projector"],
        )?;
        registry.register(Box::new(lag_seconds.clone()))?;
        Ok(StatusGauges {
            position: int(
                "cstrack_projector_last_global_position",
                "Highest global position applied",
            )?,
            lag_events: int("cstrack_projector_lag_events", "Events in the store not yet applied")?,
            lag_seconds,
            dead_lettered: int("cstrack_projector_dead_lettered", "Deliveries dead-lettered")?,
            rebuild_done: int(
                "cstrack_projector_rebuild_events_done",
                "Events applied by the latest rebuild",
            )?,
            rebuild_total: int(
                "cstrack_projector_rebuild_events_total",
                "Events the latest rebuild reads",
            )?,
        })
    }

    async fn refresh(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        for status in projector_status(pool, events::topology::PROJECTORS).await? {
            let label = [status.projector.as_str()];
            self.position.with_label_values(&label).set(status.last_global_position);
            self.lag_events.with_label_values(&label).set(status.lag_events);
            self.lag_seconds.with_label_values(&label).set(status.lag_seconds);
            self.dead_lettered.with_label_values(&label).set(status.dead_lettered);
            self.rebuild_done
                .with_label_values(&label)
                .set(status.rebuild_events_done.unwrap_or(0));
            self.rebuild_total
                .with_label_values(&label)
                .set(status.rebuild_events_total.unwrap_or(0));
        }
        Ok(())
    }

    /// Refreshes every `interval` until `stopped` turns true.
    pub async fn run(self, pool: PgPool, interval: Duration, mut stopped: watch::Receiver<bool>) {
        while !*stopped.borrow() {
            if let Err(error) = self.refresh(&pool).await {
                tracing::warn!(%error, "refreshing the projector status failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stopped.changed() => {}
            }
        }
    }
}
