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
    /// Connections in the pool.
    #[arg(long, env = "CSTRACK_DATABASE_POOL", default_value_t = 16)]
    pub database_pool: u32,
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
    /// Partitions of each projector's queue; a customer's events always go to the same one.
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
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(&self.database_url)
            .await
    }
}
