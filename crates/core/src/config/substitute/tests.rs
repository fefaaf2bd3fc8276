use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/u".into()),
        "PORT" => Some("4444".into()),
        "WHICH" => Some("PORT".into()),
        _ => None,
    }
}

fn run(props: &[(&str, &str)], sys: &[(&str, &str)], fallback: bool, value: &str) -> Resolved {
    let props: BTreeMap<String, String> = props
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sys: BTreeMap<String, String> = sys
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let env_fn = env;
    let s = Substitutor::new(&props, &sys, &env_fn, fallback);
    s.resolve(value)
}

fn value(props: &[(&str, &str)], value: &str) -> String {
    run(props, &[("env", "DEV")], false, value).value
}

#[test]
fn env_and_sys_lookups_resolve() {
    assert_eq!(value(&[], "${env:PORT}"), "4444");
    assert_eq!(value(&[], "${ENV:PORT}"), "4444");
    assert_eq!(value(&[], "${sys:env}-x"), "DEV-x");
    assert_eq!(value(&[], "${sys:user.home}"), "/home/u");
    assert_eq!(value(&[], "a${env:PORT}b${env:PORT}c"), "a4444b4444c");
}

#[test]
fn nested_names_resolve_inside_out() {
    let props = [("DEV_BIND", "10.0.0.1"), ("PROD_BIND", "10.0.0.2")];
    assert_eq!(value(&props, "${${sys:env}_BIND}"), "10.0.0.1");
    assert_eq!(value(&[], "${env:${env:WHICH}}"), "4444");
}

#[test]
fn bare_names_resolve_against_properties_recursively() {
    let props = [("a", "${b}/x"), ("b", "${env:HOME}")];
    assert_eq!(value(&props, "${a}"), "/home/u/x");
}

#[test]
fn bare_names_use_the_environment_only_in_env_var_resolver_mode() {
    let r = run(&[], &[], false, "${PORT}");
    assert_eq!(r.value, "${PORT}");
    assert_eq!(r.problems.len(), 1);
    assert_eq!(run(&[], &[], true, "${PORT}").value, "4444");
    assert_eq!(run(&[("PORT", "1")], &[], true, "${PORT}").value, "1");
}

#[test]
fn a_failed_prefixed_lookup_falls_back_to_the_bare_name() {
    assert_eq!(value(&[("X", "1")], "${env:X}"), "1");
    assert_eq!(value(&[("X", "1")], "${nope:X}"), "1");
    let r = run(&[], &[], false, "${nope:Y}");
    assert_eq!(r.value, "${nope:Y}");
    assert!(
        r.problems[0].contains("not one of Flume's lookups"),
        "{r:?}"
    );
}

#[test]
fn defaults_escapes_and_leftovers() {
    assert_eq!(value(&[], "${env:MISSING:-dflt}"), "dflt");
    assert_eq!(value(&[], "$${env:PORT}"), "${env:PORT}");
    assert_eq!(value(&[], "$$x ${ unclosed"), "$$x ${ unclosed");
    assert_eq!(value(&[], "${}"), "${}");
    let r = run(&[], &[], false, "${a}${a}");
    assert_eq!(r.value, "${a}${a}");
    assert_eq!(r.problems.len(), 1);
}

#[test]
fn cycles_end_unresolved_and_are_reported() {
    let r = run(&[("a", "${b}"), ("b", "${a}")], &[], false, "${a}");
    assert!(r.value.contains("${"), "{r:?}");
    assert!(!r.problems.is_empty());
    let r = run(&[("a", "x${a}")], &[], false, "${a}");
    assert!(r.value.starts_with('x'), "{r:?}");
}

#[test]
fn java_lookups_are_reported() {
    let r = run(&[], &[], false, "${java:version}");
    assert_eq!(r.value, "${java:version}");
    assert!(r.problems.iter().any(|p| p.contains("JVM")));
}

#[test]
fn dates_format_numeric_fields_in_utc() {
    // 2024-03-05T07:08:09.010Z
    let ms = 1_709_622_489_010;
    assert_eq!(
        format_date(ms, "yyyy-MM-dd'T'HH:mm:ss.SSS").as_deref(),
        Ok("2024-03-05T07:08:09.010")
    );
    assert_eq!(format_date(ms, "yyMMdd h").as_deref(), Ok("240305 7"));
    assert!(format_date(ms, "EEE").is_err());
}
