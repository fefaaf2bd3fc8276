//! Reading a running agent's monitoring endpoint: `GET /metrics` (Flume's JSON) and
//! `GET /topology` (Flumen's graph; a 404, as from Apache Flume, means "no graph"), each with
//! a short timeout so an unreachable agent shows up as an error within a refresh or two.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};

use super::model::{parse_metrics, Graph, ParseError, Reading};

/// How long one request may take (connect included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a sample could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The address given is not a URL.
    #[error("{address:?} is not a URL or HOST:PORT: {message}")]
    BadAddress {
        /// What was given.
        address: String,
        /// What is wrong with it.
        message: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// The request failed (refused, timed out, reset).
    #[error("GET {url}: {message}")]
    Request {
        /// The URL requested.
        url: String,
        /// What went wrong, with its causes.
        message: String,
    },
    /// The agent answered with an unexpected status.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// The status it answered.
        status: u16,
    },
    /// The body is not what the endpoint serves.
    #[error("GET {url}: {error}")]
    Body {
        /// The URL requested.
        url: String,
        /// What is wrong with the body.
        error: ParseError,
    },
}

/// One sample: the counters and, when the agent serves it, the graph.
#[derive(Clone, Debug)]
pub struct Sample {
    /// The `/metrics` reading.
    pub reading: Reading,
    /// The `/topology` graph (`None`: the agent has no such endpoint, e.g. Apache Flume).
    pub graph: Option<Graph>,
}

/// The base URL for an address given on the command line: `HOST:PORT` gets `http://`, a
/// trailing `/` or `/metrics` is dropped (`http://h:1/metrics` names the same agent).
pub fn base_url(address: &str) -> Result<String, FetchError> {
    let bad = |message: &str| FetchError::BadAddress {
        address: address.to_string(),
        message: message.to_string(),
    };
    let trimmed = address.trim();
    if trimmed.is_empty() {
        return Err(bad("empty"));
    }
    let mut url = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    while url.ends_with('/') {
        url.pop();
    }
    if let Some(stripped) = url.strip_suffix("/metrics") {
        url = stripped.to_string();
    }
    let parsed = reqwest::Url::parse(&url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// are served"));
    }
    if parsed.host_str().is_none() {
        return Err(bad("no host"));
    }
    Ok(url)
}

/// An HTTP client for one agent.
pub struct Fetcher {
    client: Client,
    base: String,
}

impl Fetcher {
    /// A client for the agent at `base` (see [`base_url`]).
    pub fn new(base: String) -> Result<Fetcher, FetchError> {
        let client = Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| FetchError::Client(chain(&e)))?;
        Ok(Fetcher { client, base })
    }

    /// The agent's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Reads `/metrics`, then `/topology`.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future abandons the requests and changes nothing.
    pub async fn sample(&self) -> Result<Sample, FetchError> {
        let (status, body, url) = self.get("/metrics").await?;
        let at = Instant::now();
        if status != StatusCode::OK {
            return Err(FetchError::Status {
                url,
                status: status.as_u16(),
            });
        }
        let components = parse_metrics(&body).map_err(|error| FetchError::Body { url, error })?;
        let (status, body, url) = self.get("/topology").await?;
        let graph = match status {
            StatusCode::OK => {
                Some(Graph::parse(&body).map_err(|error| FetchError::Body { url, error })?)
            }
            // Apache Flume (and older Flumen) serve no graph: the table alone is shown.
            StatusCode::NOT_FOUND => None,
            other => {
                return Err(FetchError::Status {
                    url,
                    status: other.as_u16(),
                })
            }
        };
        Ok(Sample {
            reading: super::model::Reading { at, components },
            graph,
        })
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, String, String), FetchError> {
        let url = format!("{}{path}", self.base);
        let failed = |e: reqwest::Error, url: &str| FetchError::Request {
            url: url.to_string(),
            message: chain(&e),
        };
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| failed(e, &url))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| failed(e, &url))?;
        Ok((status, body, url))
    }
}

/// An error's causes, `outer: inner: root`, without reqwest's own outer message when there is
/// a cause (it only repeats the URL: "error sending request for url (...)").
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = error.source();
    while let Some(e) = next {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        next = e.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_become_base_urls() {
        let ok = |a: &str| base_url(a).unwrap();
        assert_eq!(ok("127.0.0.1:41414"), "http://127.0.0.1:41414");
        assert_eq!(ok("http://h:1/"), "http://h:1");
        assert_eq!(ok("http://h:1/metrics"), "http://h:1");
        assert_eq!(ok("https://h/flume/"), "https://h/flume");
        assert!(base_url("").is_err());
        assert!(base_url("ftp://h:1").is_err());
        assert!(base_url("http://").is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_error_naming_the_url() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let f = Fetcher::new(base_url(&format!("127.0.0.1:{port}")).unwrap()).unwrap();
        let e = f.sample().await.unwrap_err().to_string();
        assert!(
            e.contains(&format!("http://127.0.0.1:{port}/metrics")),
            "{e}"
        );
    }

    /// Serves each request from `answers` (path → status line and body) on one connection
    /// each, chunked like Jetty's, then stops.
    fn serve(answers: Vec<(&'static str, &'static str, &'static str)>) -> u16 {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for _ in 0..answers.len() {
                let (mut s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                r.read_line(&mut first).unwrap();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                }
                let path = first.split(' ').nth(1).unwrap_or("").to_string();
                let (_, status, body) = answers.iter().find(|a| a.0 == path).copied().unwrap_or((
                    "",
                    "404 Not Found",
                    "",
                ));
                let chunks = if body.is_empty() {
                    "0\r\n\r\n".to_string()
                } else {
                    format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
                };
                let reply = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                     Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunks}"
                );
                s.write_all(reply.as_bytes()).unwrap();
            }
        });
        port
    }

    #[tokio::test]
    async fn apache_flume_without_a_topology_gives_the_table_alone() {
        let port = serve(vec![
            (
                "/metrics",
                "200 OK",
                r#"{"SOURCE.r1":{"Type":"SOURCE","EventReceivedCount":"4"}}"#,
            ),
            ("/topology", "404 Not Found", ""),
        ]);
        let f = Fetcher::new(base_url(&format!("127.0.0.1:{port}")).unwrap()).unwrap();
        let s = f.sample().await.unwrap();
        assert_eq!(s.graph, None);
        assert_eq!(s.reading.components[0].get("EventReceivedCount"), Some(4.0));
    }

    #[tokio::test]
    async fn a_server_error_is_reported_with_its_status() {
        let port = serve(vec![("/metrics", "500 Server Error", "boom")]);
        let f = Fetcher::new(base_url(&format!("127.0.0.1:{port}")).unwrap()).unwrap();
        let e = f.sample().await.unwrap_err().to_string();
        assert!(e.ends_with("/metrics: HTTP 500"), "{e}");
    }
}
