//! Settings every service shares, from flags or environment variables, with defaults for the
//! local setup of the README.

use crate::topology::Topology;

#[derive(clap::Args, Debug, Clone)]
pub struct DatabaseSettings {
    /// PostgreSQL holding the event store and the read models.
    #[arg(
        long,
        env = "CSTRACK_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/cstrack"
    )]
    pub database_url: String,
    /// Most connections in the pool. Idle ones are closed after a minute, so a quiet service
    /// holds few of the server's connections.
    #[arg(long, env = "CSTRACK_DATABASE_POOL", default_value_t = 16)]
    pub database_pool: u32,
    /// How long a request waits for a pooled connection (while the server has none to give, for
    /// one) before it is answered as unavailable.
    #[arg(long, env = "CSTRACK_DATABASE_ACQUIRE_SECONDS", default_value_t = 5)]
    pub database_acquire_seconds: u64,
}

#[derive(clap::Args, Debug, Clone)]
pub struct BrokerSettings {
    #[arg(
        long,
        env = "CSTRACK_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,
    /// Prefix of every exchange and queue name, so several systems can share a broker.
    #[arg(long, env = "CSTRACK_AMQP_PREFIX", default_value = "cstrack")]
    pub amqp_prefix: String,
    /// Partition queues of the projectors; a customer's events always go to the same one.
    #[arg(long, env = "CSTRACK_PARTITIONS", default_value_t = 4)]
    pub partitions: u16,
}

impl BrokerSettings {
    pub fn topology(&self) -> Topology {
        Topology::new(self.amqp_prefix.clone(), self.partitions)
    }
}

impl DatabaseSettings {
    pub async fn connect(&self) -> Result<sqlx::PgPool, sqlx::Error> {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(self.database_pool)
            .min_connections(0)
            .idle_timeout(std::time::Duration::from_secs(60))
            .acquire_timeout(std::time::Duration::from_secs(self.database_acquire_seconds))
            .connect(&self.database_url)
            .await
    }
}
