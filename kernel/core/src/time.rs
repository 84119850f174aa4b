//! The current time as ISO 8601 text (UTC), without a date-time dependency: Jupyter message
//! headers and experiment manifests both need it.

/// UTC now as `YYYY-MM-DDTHH:MM:SSZ`, or with microseconds (`...SS.ffffffZ`) when `micros`.
/// The days-to-civil conversion is Howard Hinnant's.
pub fn utc_now_iso8601(micros: bool) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fraction = if micros {
        format!(".{:06}", now.subsec_micros())
    } else {
        String::new()
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_the_iso_shape() {
        let t = super::utc_now_iso8601(true);
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T');
        assert_eq!(super::utc_now_iso8601(false).len(), 20);
    }
}
