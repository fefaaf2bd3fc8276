//! The avro source's `ipFilter`: Flume's `ipFilterRules`, a comma-separated list of
//! `<allow|deny>:<ip|name>:<pattern>`, tried in order; the first rule matching the client
//! decides, and a client no rule matches is allowed (Netty's `RuleBasedIpFilter`).
//!
//! A pattern is a glob (`*` any characters, `?` one, `.` literal) matched against the whole
//! address text (`ip`) or the client's reverse-DNS name (`name`); `name:localhost` matches
//! any loopback address, as Flume's `PatternRule` does.

use std::net::IpAddr;

use regex::Regex;

/// One rule.
#[derive(Debug)]
struct Rule {
    allow: bool,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Ip(Regex),
    Name(Regex),
    Localhost,
}

/// The parsed rules.
#[derive(Debug)]
pub struct IpFilter {
    rules: Vec<Rule>,
}

impl IpFilter {
    /// Parses `ipFilterRules`; the error names the first bad rule as Flume's does.
    pub fn parse(text: &str) -> Result<IpFilter, String> {
        let mut rules = Vec::new();
        for definition in text.split(',') {
            let definition = definition.trim();
            let bad = || {
                format!("Invalid ipFilter patternRule '{definition}' should look like <'allow' or 'deny'>:<'ip' or 'name'>:<pattern>")
            };
            let mut parts = definition.splitn(3, ':');
            let (Some(access), Some(kind), Some(pattern)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let allow = match access {
                "allow" => true,
                "deny" => false,
                _ => return Err(bad()),
            };
            let kind = match (kind, pattern.trim()) {
                ("name", "localhost") => Kind::Localhost,
                ("name", p) => Kind::Name(glob(p).map_err(|e| format!("{}: {e}", bad()))?),
                ("ip", p) => Kind::Ip(glob(p).map_err(|e| format!("{}: {e}", bad()))?),
                _ => return Err(bad()),
            };
            rules.push(Rule { allow, kind });
        }
        Ok(IpFilter { rules })
    }

    /// Whether any rule needs the client's name (a reverse DNS lookup).
    pub fn needs_names(&self) -> bool {
        self.rules.iter().any(|r| matches!(r.kind, Kind::Name(_)))
    }

    /// Whether a client at `ip`, named `name` (when looked up), may connect.
    pub fn allows(&self, ip: IpAddr, name: Option<&str>) -> bool {
        // A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`; rules name them in
        // IPv4 form, as Java presents them.
        let ip = ip.to_canonical();
        let text = ip.to_string();
        for rule in &self.rules {
            let matched = match &rule.kind {
                Kind::Localhost => ip.is_loopback(),
                Kind::Ip(re) => re.is_match(&text),
                Kind::Name(re) => name.is_some_and(|n| re.is_match(n)),
            };
            if matched {
                return rule.allow;
            }
        }
        true
    }
}

/// Flume's glob: `.` literal, `*` any run, `?` one character, anything else as regex text.
fn glob(pattern: &str) -> Result<Regex, regex::Error> {
    let body = pattern
        .replace('.', r"\.")
        .replace('*', ".*")
        .replace('?', ".");
    Regex::new(&format!("^(?:{body})$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn the_first_matching_rule_decides_and_no_match_allows() {
        let f =
            IpFilter::parse("allow:ip:127.*,deny:ip:10.0.?.*, deny:name:localhost").expect("valid");
        assert!(f.allows(ip("127.0.0.1"), None));
        assert!(!f.allows(ip("10.0.3.7"), None));
        assert!(f.allows(ip("10.0.33.7"), None), "? is one character");
        assert!(f.allows(ip("192.168.1.1"), None), "no rule matches");
        let f = IpFilter::parse("deny:name:localhost,allow:ip:*").expect("valid");
        assert!(!f.allows(ip("127.0.0.1"), None));
        assert!(!f.allows(ip("::1"), None));
        assert!(
            !f.allows(ip("::ffff:127.0.0.1"), None),
            "IPv4-mapped loopback"
        );
        assert!(f.allows(ip("10.1.1.1"), None));
        assert!(!f.needs_names());
        let f = IpFilter::parse("deny:name:*.example.com").expect("valid");
        assert!(f.needs_names());
        assert!(!f.allows(ip("10.1.1.1"), Some("db.example.com")));
        assert!(f.allows(ip("10.1.1.1"), None));
    }

    #[test]
    fn malformed_rules_are_refused_with_flumes_words() {
        for bad in ["allow", "permit:ip:1.2.3.4", "allow:mac:aa", "allow:ip"] {
            let error = IpFilter::parse(bad).expect_err(bad);
            assert!(error.contains("should look like"), "{error}");
        }
    }
}
