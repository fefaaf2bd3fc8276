//! `host` interceptor (`org.apache.flume.interceptor.HostInterceptor`): sets a header to this
//! host's address or name.
//!
//! Keys: `useIP` (true), `hostHeader` ("host"), `preserveExisting` (false). The value is
//! resolved once, when the interceptor is built, as Flume's `InetAddress.getLocalHost()` does:
//! the host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`) is resolved through the system
//! resolver (`/etc/hosts`, DNS) and the first IPv4 address is used (the first address when there
//! is no IPv4 one, as Java prefers IPv4). When it cannot be resolved, Flume (and Flumen) log a
//! warning and set no header. Divergence: with `useIP = false` Flume uses the canonical name
//! from a reverse lookup of that address; Flumen uses the host name as the system reports it.

use std::net::{IpAddr, ToSocketAddrs};

use async_trait::async_trait;

use super::{InterceptCtx, Interceptor};
use crate::config::PropReader;
use crate::event::Event;

/// The host interceptor.
pub struct HostInterceptor {
    header: String,
    host: Option<String>,
    use_ip: bool,
    preserve_existing: bool,
}

impl HostInterceptor {
    /// Reads `useIP` (true), `hostHeader` ("host"), `preserveExisting` (false) and resolves
    /// the host.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let use_ip = r.bool("useIP", true);
        let header = r.string("hostHeader", "host");
        let preserve_existing = r.bool("preserveExisting", false);
        let host = local_host(use_ip);
        if host.is_none() {
            tracing::warn!(
                use_ip,
                "Could not resolve the local host; the host interceptor sets no header."
            );
        }
        Some(HostInterceptor {
            header,
            host,
            use_ip,
            preserve_existing,
        })
    }
}

/// This host's name as the kernel reports it.
pub(crate) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The local host's IP (first IPv4 address of its name) or its name.
pub(crate) fn local_host(use_ip: bool) -> Option<String> {
    let name = host_name()?;
    if !use_ip {
        return Some(name);
    }
    let addrs: Vec<IpAddr> = match (name.as_str(), 0u16).to_socket_addrs() {
        Ok(it) => it.map(|a| a.ip()).collect(),
        Err(error) => {
            tracing::warn!(host = %name, %error, "Could not resolve the local host name.");
            return None;
        }
    };
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(IpAddr::to_string)
}

#[async_trait]
impl Interceptor for HostInterceptor {
    fn type_name(&self) -> &'static str {
        "host"
    }

    fn describe(&self) -> String {
        format!(
            "hostHeader={} useIP={} preserveExisting={} value={}",
            self.header,
            self.use_ip,
            self.preserve_existing,
            self.host.as_deref().unwrap_or("(unresolved)")
        )
    }

    async fn intercept(&mut self, mut events: Vec<Event>, _ctx: &mut InterceptCtx) -> Vec<Event> {
        let Some(host) = &self.host else {
            return events;
        };
        for e in &mut events {
            if self.preserve_existing && e.headers.contains_key(self.header.as_str()) {
                continue;
            }
            e.headers
                .insert(self.header.as_str().into(), host.as_str().into());
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[tokio::test]
    async fn default_sets_the_local_ip_and_overwrites() {
        let Some(ip) = local_host(true) else {
            // No resolvable host name on this machine: nothing is set, as in Flume.
            let mut i = build_ok("host", &[]);
            let (out, _) = run(&mut i, vec![event("a", &[])]).await;
            assert!(out[0].headers.is_empty());
            return;
        };
        assert!(ip.parse::<IpAddr>().is_ok(), "{ip} is not an IP");
        let mut i = build_ok("host", &[]);
        let (out, _) = run(&mut i, vec![event("a", &[("host", "old")])]).await;
        assert_eq!(
            out[0].headers.get("host").map(|v| v.as_str()),
            Some(ip.as_str())
        );
    }

    #[tokio::test]
    async fn use_ip_false_sets_the_name_under_host_header_and_preserves() {
        let name = host_name().expect("this machine has a host name");
        let mut i = build_ok(
            "org.apache.flume.interceptor.HostInterceptor$Builder",
            &[
                ("useIP", "false"),
                ("hostHeader", "hostname"),
                ("preserveExisting", "true"),
            ],
        );
        let (out, _) = run(
            &mut i,
            vec![event("a", &[("hostname", "kept")]), event("b", &[])],
        )
        .await;
        assert_eq!(
            out[0].headers.get("hostname").map(|v| v.as_str()),
            Some("kept")
        );
        assert_eq!(
            out[1].headers.get("hostname").map(|v| v.as_str()),
            Some(name.as_str())
        );
        assert!(!out[1].headers.contains_key("host"));
    }

    #[test]
    fn bad_boolean_names_the_key() {
        let (_, findings) = build("Host", &[("useIP", "maybe")]);
        assert!(findings.iter().any(|f| f.key == format!("{PREFIX}.useIP")));
    }
}
