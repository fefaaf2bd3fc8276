//! Where `hdfs.path` points: the store (local files, an S3-compatible bucket, WebHDFS) and the
//! path template inside it.
//!
//! As Hadoop resolves a path: `file:///dir` (or `file:/dir`) is local; `s3a://bucket/dir`,
//! `s3://` and `s3n://` are a bucket; `webhdfs://host:port/dir` (`swebhdfs://` for TLS) is
//! WebHDFS; a path with no scheme resolves against `fs.defaultFS` from `core-site.xml` (found
//! in the `-c` conf directory, `$HADOOP_CONF_DIR`, `$HADOOP_HOME/etc/hadoop` or
//! `/etc/hadoop/conf`), and against `file:///` when there is none, as Hadoop's own default
//! is (the sink then warns that it writes local files). `hdfs://` needs HDFS's native RPC client, which this build
//! does not have: it is refused by name rather than written somewhere else.
//!
//! S3 settings come, most specific first, from the sink's `hdfs.<hadoop key>` properties
//! (`hdfs.fs.s3a.endpoint`), `core-site.xml` (`fs.s3a.endpoint`, `fs.s3a.endpoint.region`,
//! `fs.s3a.access.key`, `fs.s3a.secret.key`, `fs.s3a.path.style.access`), then the
//! environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`) as the AWS SDKs read it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Hadoop configuration properties (`core-site.xml`), by name.
#[derive(Clone, Debug, Default)]
pub struct HadoopConf {
    props: BTreeMap<String, String>,
    /// The file they were read from, for messages.
    pub source: Option<PathBuf>,
}

impl HadoopConf {
    /// Reads `core-site.xml` from the first of `dirs` that has one; empty when none does.
    pub fn find(dirs: &[PathBuf]) -> Result<HadoopConf, String> {
        for dir in dirs {
            let path = dir.join("core-site.xml");
            if path.is_file() {
                return HadoopConf::read(&path);
            }
        }
        Ok(HadoopConf::default())
    }

    /// Reads one `core-site.xml`.
    pub fn read(path: &Path) -> Result<HadoopConf, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc = roxmltree::Document::parse(&text)
            .map_err(|e| format!("{} is not XML: {e}", path.display()))?;
        let mut props = BTreeMap::new();
        for property in doc.descendants().filter(|n| n.has_tag_name("property")) {
            let child = |tag: &str| {
                property
                    .children()
                    .find(|c| c.has_tag_name(tag))
                    .and_then(|c| c.text())
                    .map(|t| t.trim().to_string())
            };
            if let (Some(name), Some(value)) = (child("name"), child("value")) {
                props.insert(name, value);
            }
        }
        Ok(HadoopConf {
            props,
            source: Some(path.to_path_buf()),
        })
    }

    /// A property.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.props.get(name).map(String::as_str)
    }

    /// Sets a property (the sink's `hdfs.<key>` overrides).
    pub fn set(&mut self, name: &str, value: &str) {
        self.props.insert(name.to_string(), value.to_string());
    }
}

/// An S3-compatible bucket and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    /// The bucket.
    pub bucket: String,
    /// `fs.s3a.endpoint` (with a scheme; `https://` is added when it has none, `http://` with
    /// `fs.s3a.connection.ssl.enabled = false`).
    pub endpoint: Option<String>,
    /// `fs.s3a.endpoint.region`.
    pub region: Option<String>,
    /// `fs.s3a.access.key`.
    pub access_key: Option<String>,
    /// `fs.s3a.secret.key`.
    pub secret_key: Option<String>,
    /// `fs.s3a.path.style.access` (Hadoop's default: false, virtual-host style).
    pub path_style: bool,
}

/// The store a sink writes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// Local files, written in place.
    Local,
    /// An S3-compatible bucket.
    S3(S3Settings),
    /// WebHDFS at this `http(s)://host:port`.
    WebHdfs {
        /// The endpoint.
        endpoint: String,
    },
}

impl Store {
    /// Whether files are staged locally and uploaded when closed.
    pub fn is_remote(&self) -> bool {
        !matches!(self, Store::Local)
    }

    /// For logs: `file`, `s3://bucket`, `webhdfs://...`.
    pub fn describe(&self) -> String {
        match self {
            Store::Local => "file".into(),
            Store::S3(s) => format!("s3://{}", s.bucket),
            Store::WebHdfs { endpoint } => format!("webhdfs {endpoint}"),
        }
    }
}

/// `hdfs.path` resolved: the store and the path template within it (absolute for local files,
/// a key prefix starting with `/` in a bucket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Where.
    pub store: Store,
    /// The directory template (escapes not yet replaced).
    pub path: String,
}

/// Why `hdfs.path` cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// A store Flume writes to and this build cannot (`hdfs://`): what it needs.
    Unsupported(String),
    /// Not a usable path or URI: why.
    Invalid(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Unsupported(why) | ResolveError::Invalid(why) => f.write_str(why),
        }
    }
}

/// Resolves `hdfs.path` as Hadoop would.
pub fn resolve(hdfs_path: &str, conf: &HadoopConf) -> Result<Location, ResolveError> {
    resolve_str(hdfs_path, conf).map_err(|why| {
        if why.contains("native RPC") {
            ResolveError::Unsupported(why)
        } else {
            ResolveError::Invalid(why)
        }
    })
}

fn resolve_str(hdfs_path: &str, conf: &HadoopConf) -> Result<Location, String> {
    let raw = hdfs_path.trim();
    let Some((scheme, rest)) = split_scheme(raw) else {
        return resolve_default_fs(raw, conf);
    };
    match scheme.to_ascii_lowercase().as_str() {
        "file" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(format!("`{raw}` is not an absolute file URI (file:///dir)"));
            }
            Ok(Location {
                store: Store::Local,
                path: path.to_string(),
            })
        }
        "s3a" | "s3" | "s3n" => {
            let (bucket, path) = authority(rest, raw)?;
            Ok(Location {
                store: Store::S3(s3_settings(bucket, conf)),
                path,
            })
        }
        s @ ("webhdfs" | "swebhdfs") => {
            let (host, path) = authority(rest, raw)?;
            let scheme = if s == "swebhdfs" { "https" } else { "http" };
            Ok(Location {
                store: Store::WebHdfs {
                    endpoint: format!("{scheme}://{host}"),
                },
                path,
            })
        }
        "hdfs" | "viewfs" => Err(format!(
            "`{raw}` needs HDFS's native RPC client, which this build of Flumen does not have; write through WebHDFS (`webhdfs://namenode:9870/...`) or to a local or S3 path"
        )),
        other => Err(format!(
            "the scheme `{other}` of `{raw}` is not one Flumen writes to (file, s3a, s3, webhdfs, swebhdfs)"
        )),
    }
}

/// A path with no scheme: against `fs.defaultFS`, else local.
fn resolve_default_fs(raw: &str, conf: &HadoopConf) -> Result<Location, String> {
    match conf
        .get("fs.defaultFS")
        .or_else(|| conf.get("fs.default.name"))
    {
        Some(default_fs) if split_scheme(default_fs).is_some() => {
            let base = default_fs.trim_end_matches('/');
            let joined = if raw.starts_with('/') {
                format!("{base}{raw}")
            } else {
                format!("{base}/{raw}")
            };
            if split_scheme(&joined).is_some_and(|(s, _)| s.eq_ignore_ascii_case("file"))
                && !raw.starts_with('/')
            {
                return local_relative(raw);
            }
            resolve_str(&joined, &HadoopConf::default()).map(|mut l| {
                if let Store::S3(s) = &mut l.store {
                    *s = s3_settings(&s.bucket.clone(), conf);
                }
                l
            })
        }
        _ if raw.starts_with('/') => Ok(Location {
            store: Store::Local,
            path: raw.to_string(),
        }),
        _ => local_relative(raw),
    }
}

/// A relative local path, against the working directory as Hadoop's local file system does.
fn local_relative(raw: &str) -> Result<Location, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?;
    Ok(Location {
        store: Store::Local,
        path: format!("{}/{raw}", cwd.display()),
    })
}

/// `scheme:rest` when `raw` starts with a URI scheme.
fn split_scheme(raw: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = raw.split_once(':')?;
    let valid = !scheme.is_empty()
        && scheme.len() > 1 // not a Windows drive letter
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// `//authority/path` → (authority, `/path`); the authority may not hold escapes.
fn authority<'a>(rest: &'a str, raw: &str) -> Result<(&'a str, String), String> {
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(format!("`{raw}` has no authority (scheme://host/path)"));
    };
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host.is_empty() {
        return Err(format!("`{raw}` names no bucket or host"));
    }
    if host.contains('%') {
        return Err(format!(
            "the bucket or host of `{raw}` holds an escape; escapes may only be in the path"
        ));
    }
    Ok((host, path.to_string()))
}

fn s3_settings(bucket: &str, conf: &HadoopConf) -> S3Settings {
    let get = |key: &str| conf.get(key).map(str::to_string).filter(|v| !v.is_empty());
    // Hadoop adds the scheme by `fs.s3a.connection.ssl.enabled` (default true).
    let tls =
        !get("fs.s3a.connection.ssl.enabled").is_some_and(|v| v.eq_ignore_ascii_case("false"));
    let endpoint = get("fs.s3a.endpoint").map(|e| {
        if e.contains("://") {
            e
        } else if tls {
            format!("https://{e}")
        } else {
            format!("http://{e}")
        }
    });
    S3Settings {
        bucket: bucket.to_string(),
        endpoint,
        region: get("fs.s3a.endpoint.region").or_else(|| get("fs.s3a.region")),
        access_key: get("fs.s3a.access.key"),
        secret_key: get("fs.s3a.secret.key"),
        path_style: get("fs.s3a.path.style.access").is_some_and(|v| v.eq_ignore_ascii_case("true")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> HadoopConf {
        let mut c = HadoopConf::default();
        for (k, v) in pairs {
            c.set(k, v);
        }
        c
    }

    #[test]
    fn file_uris_and_plain_absolute_paths_are_local() {
        let none = HadoopConf::default();
        for raw in ["file:///data/%Y", "file:/data/%Y", "/data/%Y"] {
            let l = resolve(raw, &none).unwrap();
            assert_eq!(l.store, Store::Local, "{raw}");
            assert_eq!(l.path, "/data/%Y", "{raw}");
        }
    }

    #[test]
    fn s3a_uris_name_the_bucket_and_take_settings_from_the_hadoop_conf() {
        let c = conf(&[
            ("fs.s3a.endpoint", "127.0.0.1:9000"),
            ("fs.s3a.access.key", "AK"),
            ("fs.s3a.path.style.access", "true"),
        ]);
        let l = resolve("s3a://logs/flume/%{host}", &c).unwrap();
        assert_eq!(l.path, "/flume/%{host}");
        let Store::S3(s) = l.store else {
            panic!("not s3")
        };
        assert_eq!(s.bucket, "logs");
        assert_eq!(s.endpoint.as_deref(), Some("https://127.0.0.1:9000"));
        assert_eq!(s.access_key.as_deref(), Some("AK"));
        assert!(s.path_style);
    }

    #[test]
    fn a_path_without_scheme_resolves_against_fs_default_fs() {
        let c = conf(&[("fs.defaultFS", "s3a://warehouse/")]);
        let l = resolve("/flume/events", &c).unwrap();
        assert_eq!(l.path, "/flume/events");
        assert!(matches!(l.store, Store::S3(ref s) if s.bucket == "warehouse"));
        let hdfs = conf(&[("fs.defaultFS", "hdfs://nn:8020")]);
        let err = resolve("/flume/events", &hdfs).unwrap_err().to_string();
        assert!(err.contains("native RPC"), "{err}");
    }

    #[test]
    fn hdfs_uris_and_unknown_schemes_are_refused_by_name() {
        let none = HadoopConf::default();
        assert!(resolve("hdfs://nn:8020/flume", &none)
            .unwrap_err()
            .to_string()
            .contains("hdfs://nn:8020/flume"));
        assert!(resolve("gs://b/x", &none)
            .unwrap_err()
            .to_string()
            .contains("`gs`"));
        assert!(resolve("s3a://%{b}/x", &none)
            .unwrap_err()
            .to_string()
            .contains("escape"));
    }

    #[test]
    fn webhdfs_uris_become_http_endpoints() {
        let l = resolve("webhdfs://nn:9870/flume", &HadoopConf::default()).unwrap();
        assert_eq!(
            l.store,
            Store::WebHdfs {
                endpoint: "http://nn:9870".into()
            }
        );
        assert_eq!(l.path, "/flume");
    }

    #[test]
    fn core_site_xml_properties_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("core-site.xml"),
            "<?xml version=\"1.0\"?><configuration><property><name>fs.defaultFS</name><value> file:/// </value></property></configuration>",
        )
        .unwrap();
        let c = HadoopConf::find(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(c.get("fs.defaultFS"), Some("file:///"));
        assert_eq!(resolve("/x", &c).unwrap().store, Store::Local);
    }
}
