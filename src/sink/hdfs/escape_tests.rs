//! Expected values come from Flume 1.11's TestBucketPath and TestTimestampRoundDownUtil, or are
//! computed for fixed instants (`date -u -d ... +%s%3N`).

use super::*;

/// 2012-03-04 05:06:07.089 UTC, a Sunday, day 64 of a leap year.
const TS: &str = "1330837567089";

fn ctx(zone: &str) -> RenderContext {
    RenderContext {
        time_zone: Zone::parse(zone).unwrap(),
        ..RenderContext::default()
    }
}

fn rounded(zone: &str, unit: RoundUnit, value: i64) -> RenderContext {
    RenderContext {
        round: Some(Rounding::new(unit, value).unwrap()),
        ..ctx(zone)
    }
}

fn render_headers(
    template: &str,
    headers: &[(&str, &str)],
    ctx: &RenderContext,
) -> Result<String, RenderError> {
    let t = PathTemplate::parse(template).unwrap();
    let mut out = String::new();
    let lookup = |k: &str| headers.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    t.render(lookup, ctx, &mut out).map(|()| out)
}

fn render_at(template: &str, ts: &str, ctx: &RenderContext) -> String {
    render_headers(template, &[("timestamp", ts)], ctx).unwrap()
}

#[test]
fn every_time_escape_formats_as_flumes_simple_date_format() {
    let cases = [
        ("%a", "Sun"),
        ("%A", "Sunday"),
        ("%b", "Mar"),
        ("%B", "March"),
        ("%c", "Sun Mar 4 05:06:07 2012"),
        ("%d", "04"),
        ("%e", "4"),
        ("%D", "03/04/12"),
        ("%H", "05"),
        ("%I", "05"),
        ("%j", "064"),
        ("%k", "5"),
        ("%l", "5"),
        ("%m", "03"),
        ("%n", "3"),
        ("%M", "06"),
        ("%p", "AM"),
        ("%s", "1330837567"),
        ("%S", "07"),
        ("%t", TS),
        ("%y", "12"),
        ("%Y", "2012"),
        ("%z", "+0000"),
        ("%%", "%"),
    ];
    for (template, expected) in cases {
        assert_eq!(render_at(template, TS, &ctx("UTC")), expected, "{template}");
    }
}

#[test]
fn twelve_hour_escapes_print_pm_and_twelve_for_midnight() {
    let c = ctx("UTC");
    assert_eq!(render_at("%I %l %p %k", "1325784600000", &c), "05 5 PM 17");
    assert_eq!(render_at("%I %l %p %H", "1325722500000", &c), "12 12 AM 00");
}

#[test]
fn unknown_letters_render_as_nothing() {
    assert_eq!(render_at("a%qb%X%_%9c%T", TS, &ctx("UTC")), "abc");
}

#[test]
fn every_percent_escape_needs_a_timestamp_even_percent_and_unknown_ones() {
    for template in ["%%", "%q", "x%Y"] {
        let err = render_headers(template, &[], &ctx("UTC")).unwrap_err();
        assert_eq!(err, RenderError::MissingTimestamp, "{template}");
        assert!(PathTemplate::parse(template).unwrap().needs_timestamp());
    }
}

#[test]
fn percent_signs_that_start_no_escape_are_kept_literally() {
    for template in [
        "100%", "%-x", "%{a b}", "%{x", "%{}", "%[a.b]", "%[x", "%é", "% ",
    ] {
        let t = PathTemplate::parse(template).unwrap();
        assert!(t.is_constant(), "{template}");
        assert_eq!(
            render_headers(template, &[], &ctx("UTC")).unwrap(),
            template
        );
    }
    assert_eq!(render_at("%%%", TS, &ctx("UTC")), "%%");
    assert_eq!(render_at("%%{a}", TS, &ctx("UTC")), "%{a}");
}

#[test]
fn a_template_without_escapes_renders_unchanged() {
    let t = PathTemplate::parse("/flume/events/data.log").unwrap();
    assert!(t.is_constant());
    assert!(!t.needs_timestamp());
    let mut out = String::from("hdfs://nn");
    t.render(|_| None, &ctx("UTC"), &mut out).unwrap();
    assert_eq!(out, "hdfs://nn/flume/events/data.log");
}

#[test]
fn headers_are_substituted_and_absent_ones_are_empty() {
    let headers = [("app", "web"), ("dc.zone-1", "eu"), ("nested", "a/b")];
    let out = render_headers(
        "/l/%{app}/%{dc.zone-1}/%{none}/%{nested}/x",
        &headers,
        &ctx("UTC"),
    );
    assert_eq!(out.unwrap(), "/l/web/eu//a/b/x");
}

#[test]
fn header_and_host_escapes_need_no_timestamp() {
    let t = PathTemplate::parse("%{a}/%[IP]").unwrap();
    assert!(!t.needs_timestamp());
    assert!(!t.is_constant());
    assert_eq!(
        render_headers("%{a}", &[("a", "1")], &ctx("UTC")).unwrap(),
        "1"
    );
}

#[test]
fn host_escapes_take_the_callers_names_ignoring_case() {
    let mut c = ctx("UTC");
    c.host = HostNames {
        host_name: "node1".into(),
        ip: "10.1.2.3".into(),
        canonical_name: "node1.example.org".into(),
    };
    let out = render_headers("%[localhost]/%[IP]/%[FQDN]/%[LocalHost]/%[ip]", &[], &c);
    assert_eq!(
        out.unwrap(),
        "node1/10.1.2.3/node1.example.org/node1/10.1.2.3"
    );
}

#[test]
fn an_unknown_host_escape_is_a_parse_error() {
    let err = PathTemplate::parse("%[abcdefg]/%[IP]").unwrap_err();
    assert_eq!(
        err,
        TemplateError::UnknownHostEscape {
            name: "abcdefg".into()
        }
    );
    assert!(err.to_string().contains("%[abcdefg]"));
}

#[test]
fn a_missing_or_unparsable_timestamp_header_is_an_error() {
    let err = render_headers("%Y", &[("ts", TS)], &ctx("UTC")).unwrap_err();
    assert!(err.to_string().contains("timestamp"));
    let too_far = "9223372036854775807"; // parses, but no calendar date
    for bad in [
        "abc",
        "",
        " 1",
        "1.5",
        "1e3",
        "99999999999999999999",
        too_far,
    ] {
        let err = render_headers("%Y", &[("timestamp", bad)], &ctx("UTC")).unwrap_err();
        assert_eq!(err, RenderError::BadTimestamp { value: bad.into() });
    }
}

#[test]
fn a_signed_timestamp_parses_as_java_long_and_t_prints_it_as_written() {
    let plus = "+1330837567089";
    assert_eq!(
        render_at("%t %Y", plus, &ctx("UTC")),
        format!("{plus} 2012")
    );
    assert_eq!(render_at("%s %Y %t", "-1500", &ctx("UTC")), "-1 1969 -1500");
}

#[test]
fn t_is_never_rounded_while_s_and_dates_are() {
    let c = rounded("UTC", RoundUnit::Hour, 1);
    assert_eq!(render_at("%t %s %M", TS, &c), format!("{TS} 1330837200 00"));
}

#[test]
fn hour_rounding_to_twelve_matches_test_bucket_path() {
    let c = rounded("UTC", RoundUnit::Hour, 12);
    assert_eq!(
        render_at("%c", "1340459193234", &c),
        "Sat Jun 23 12:00:00 2012"
    );
    assert_eq!(
        render_at("%c", "1340459193234", &ctx("UTC")),
        "Sat Jun 23 13:46:33 2012"
    );
}

#[test]
fn minute_and_second_rounding_to_five_match_test_bucket_path() {
    let ts = "1340459193234";
    let minutes = rounded("UTC", RoundUnit::Minute, 5);
    assert_eq!(render_at("%s", ts, &minutes), "1340459100");
    let seconds = rounded("UTC", RoundUnit::Second, 5);
    assert_eq!(render_at("%s", ts, &seconds), "1340459190");
}

#[test]
fn rounding_down_to_ten_minutes_zeroes_seconds_and_millis() {
    let c = rounded("Europe/Paris", RoundUnit::Minute, 10);
    assert_eq!(
        render_at("%H:%M:%S %s", "1330840799000", &c),
        "06:50:00 1330840200"
    );
}

#[test]
fn rounding_takes_multiples_within_the_field_not_since_the_epoch() {
    let c = rounded("UTC", RoundUnit::Minute, 7);
    assert_eq!(render_at("%H:%M:%S", "1330840799000", &c), "05:56:00");
}

#[test]
fn hour_rounding_follows_the_wall_clock_of_the_zone() {
    let kolkata = rounded("Asia/Kolkata", RoundUnit::Hour, 1);
    assert_eq!(
        render_at("%H:%M %z %s", TS, &kolkata),
        "10:00 +0530 1330835400"
    );
    let utc = rounded("UTC", RoundUnit::Hour, 1);
    assert_eq!(render_at("%H:%M %s", TS, &utc), "05:00 1330837200");
    let east8 = rounded("GMT+8", RoundUnit::Hour, 12);
    assert_eq!(
        render_at("%H:%M %z %s", TS, &east8),
        "12:00 +0800 1330833600"
    );
}

#[test]
fn rounding_in_a_repeated_dst_hour_takes_the_later_instant_as_java_does() {
    // 01:45 EDT on 2012-11-04, the first of two 01:45s in New York.
    let c = rounded("America/New_York", RoundUnit::Minute, 10);
    assert_eq!(
        render_at("%H:%M %z", "1352007900000", &ctx("America/New_York")),
        "01:45 -0400"
    );
    assert_eq!(
        render_at("%H:%M %z %s", "1352007900000", &c),
        "01:40 -0500 1352011200"
    );
}

#[test]
fn rounding_into_a_skipped_dst_hour_uses_the_offset_before_the_change() {
    // 03:30 EDT on 2012-03-11; two-hour rounding asks for 02:00, which New York skipped.
    let c = rounded("America/New_York", RoundUnit::Hour, 2);
    assert_eq!(
        render_at("%H:%M %z %s", "1331451000000", &c),
        "03:00 -0400 1331449200"
    );
}

#[test]
fn rounding_needs_a_positive_timestamp() {
    let c = rounded("UTC", RoundUnit::Second, 1);
    for (ts, millis) in [("0", 0), ("-5", -5)] {
        let err = render_headers("%%", &[("timestamp", ts)], &c).unwrap_err();
        assert_eq!(err, RenderError::TimestampNotPositive { millis });
    }
}

#[test]
fn month_and_day_escapes_without_padding_match_test_bucket_path() {
    let c = ctx("UTC");
    assert_eq!(render_at("%n-%e", "1399124793000", &c), "5-3");
    assert_eq!(render_at("%n-%e", "1415886393000", &c), "11-13");
}

#[test]
fn local_timestamp_uses_now_and_ignores_the_header() {
    // TestBucketPath.testDateRace: 02:59:59 rounded down to ten minutes.
    let mut c = rounded("UTC", RoundUnit::Minute, 10);
    c.use_local_timestamp = true;
    c.now_millis = 1366513199000;
    assert_eq!(render_headers("%H:%M", &[], &c).unwrap(), "02:50");
    let out = render_headers("%t %H:%M", &[("timestamp", TS)], &c).unwrap();
    assert_eq!(out, "1366513199000 02:50");
}

#[test]
fn round_values_and_units_are_checked_as_flume_does() {
    assert!(Rounding::new(RoundUnit::Minute, 60).is_ok());
    assert!(Rounding::new(RoundUnit::Second, 61).is_err());
    assert!(Rounding::new(RoundUnit::Minute, 0).is_err());
    assert!(Rounding::new(RoundUnit::Hour, 24).is_ok());
    assert!(Rounding::new(RoundUnit::Hour, 25).is_err());
    assert_eq!(RoundUnit::parse("HOUR"), Ok(RoundUnit::Hour));
    assert_eq!(RoundUnit::parse("Minute"), Ok(RoundUnit::Minute));
    assert_eq!(RoundUnit::parse("second"), Ok(RoundUnit::Second));
    assert!(RoundUnit::parse("day").is_err());
}

#[test]
fn zone_ids_parse_as_java_time_zone_ids() {
    let offset = |id: &str| match Zone::parse(id).unwrap() {
        Zone::Fixed(o) => o.local_minus_utc(),
        other => panic!("{id}: {other:?}"),
    };
    assert_eq!(offset("GMT+8"), 8 * 3600);
    assert_eq!(offset("GMT+08"), 8 * 3600);
    assert_eq!(offset("GMT+0800"), 8 * 3600);
    assert_eq!(offset("GMT+530"), 5 * 3600 + 1800);
    assert_eq!(offset("GMT-05:30"), -(5 * 3600 + 1800));
    assert_eq!(offset("GMT+05:30:15"), 5 * 3600 + 1815);
    assert_eq!(offset("GMT+0010"), 600);
    assert_eq!(Zone::parse("IST"), Ok(Zone::Named(Tz::Asia__Kolkata)));
    assert_eq!(Zone::parse("CST"), Ok(Zone::Named(Tz::America__Chicago)));
    assert_eq!(
        Zone::parse("Europe/Paris"),
        Ok(Zone::Named(Tz::Europe__Paris))
    );
    for ok in ["UTC", "GMT", "EST", "Etc/GMT+8", "US/Pacific"] {
        assert!(Zone::parse(ok).is_ok(), "{ok}");
    }
    let bad = [
        "",
        "Mars/Olympus",
        "gmt+8",
        "UTC+8",
        "GMT+",
        "GMT+24",
        "GMT+5:7",
        "GMT+12345",
    ];
    for id in bad
        .into_iter()
        .chain(["GMT+5:30:00:00", "GMT*8", "GMT+5:", "GMT+:30"])
    {
        let err = Zone::parse(id).unwrap_err();
        assert!(err.contains("unknown time zone"), "{id}: {err}");
    }
}

#[test]
fn z_prints_the_offset_of_the_zone_at_that_instant() {
    assert_eq!(render_at("%z", TS, &ctx("Asia/Kolkata")), "+0530");
    assert_eq!(render_at("%z", TS, &ctx("GMT-05:30")), "-0530");
    assert_eq!(render_at("%z %H", TS, &ctx("Etc/GMT+8")), "-0800 21");
    assert_eq!(render_at("%z", TS, &ctx("America/New_York")), "-0500");
    assert_eq!(
        render_at("%z", "1340459193234", &ctx("America/New_York")),
        "-0400"
    );
}

#[test]
fn the_local_zone_formats_as_chrono_local() {
    let expected = Local.timestamp_millis_opt(1330837567089).unwrap();
    let c = RenderContext::default();
    let out = render_at("%Y-%m-%d %H:%M:%S %z", TS, &c);
    assert_eq!(out, expected.format("%Y-%m-%d %H:%M:%S %z").to_string());
}

#[test]
fn header_values_that_could_leave_the_root_are_refused() {
    let c = ctx("UTC");
    for value in ["..", ".", "a/../b", "a/./b", "x/..", "/etc", "a\0b"] {
        let mut out = String::from("kept");
        let t = PathTemplate::parse("/data/%{dir}/x").unwrap();
        let err = t.render(|_| Some(value), &c, &mut out).unwrap_err();
        assert!(matches!(&err, RenderError::UnsafeValue { header, .. } if header == "dir"));
        assert!(err.to_string().contains("dir"), "{err}");
        assert_eq!(out, "kept", "{value:?}");
    }
    for value in ["a/b", "...", "a..b", ".hidden", "", "a//b", "2012/03"] {
        let out = render_headers("/data/%{dir}/x", &[("dir", value)], &c).unwrap();
        assert_eq!(out, format!("/data/{value}/x"));
    }
}

#[test]
fn a_failed_render_leaves_the_buffer_as_it_was() {
    let t = PathTemplate::parse("/a/%{x}/%Y").unwrap();
    let mut out = String::from("pre");
    let err = t.render(|k| (k == "x").then_some("v"), &ctx("UTC"), &mut out);
    assert_eq!(err, Err(RenderError::MissingTimestamp));
    assert_eq!(out, "pre");
}

#[test]
fn day_of_year_and_two_digit_years_are_zero_padded() {
    // 2005-01-05 00:00:00 UTC.
    assert_eq!(
        render_at("%j %y %D", "1104883200000", &ctx("UTC")),
        "005 05 01/05/05"
    );
}
