//! librdkafka's logs and errors through `tracing`, named by component and rate-limited: a
//! broker that is down makes the client report every reconnect attempt.

use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;

use crate::rate_limit::RateLimit;

/// The client context of every Kafka client Flumen opens.
pub struct TracingContext {
    component: String,
    warnings: RateLimit,
}

impl TracingContext {
    /// A context for the component named `component` (`k1`).
    pub fn new(component: &str) -> Self {
        TracingContext {
            component: component.to_string(),
            warnings: RateLimit::new(Duration::from_secs(10)),
        }
    }
}

impl ClientContext for TracingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let component = self.component.as_str();
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                if let Some(suppressed) = self.warnings.check() {
                    tracing::warn!(component, facility, suppressed, "librdkafka: {message}");
                }
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::debug!(component, facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::trace!(component, facility, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(suppressed) = self.warnings.check() {
            tracing::warn!(component = %self.component, %error, suppressed, "Kafka client: {reason}");
        }
    }
}

impl ConsumerContext for TracingContext {}
