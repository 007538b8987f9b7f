//! `X-Request-Start`: when a job's clock started before this server saw it. A balancer (nginx
//! sends `t=${msec}`) or a client stamps the request as it sends it, and the server charges the
//! time since to the job's budget, so a job that waited in a balancer, or is retried on a second
//! replica, never gets its whole budget twice. The value is `t=` and seconds since the Unix
//! epoch, with a fraction (`t=1700000000.123`); as in the New Relic and Heroku convention, an
//! integer in milliseconds or microseconds is also taken.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The header's name.
pub(super) const HEADER: &str = "x-request-start";

/// The form `spent` takes, as the OpenAPI document states it (a test keeps the two equal).
#[cfg(test)]
pub(super) const PATTERN: &str = r"^(t=)?[0-9]+(\.[0-9]+)?$";

/// The time already spent by `now`, from a header `value`; `Err` names the accepted form.
/// A stamp from the future (clocks apart) counts as no time spent.
pub(super) fn spent(value: &str, now: SystemTime) -> Result<Duration, String> {
    let raw = value.trim();
    let number = raw.strip_prefix("t=").unwrap_or(raw);
    // Digits, and a fraction after a point: what `PATTERN` says, and no more of what `f64`'s
    // parser would take (exponents, signs, `inf`).
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match number.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(number),
    };
    let stamp: f64 = number.parse().ok().filter(|x: &f64| well_formed && x.is_finite()).ok_or_else(|| {
        format!(
            "X-Request-Start {value:?} is not a time: send t=SECONDS.FRACTION since the Unix epoch (nginx: t=${{msec}})"
        )
    })?;
    // Seconds now are about 1.7e9: larger stamps are milliseconds (1.7e12) or microseconds (1.7e15).
    let seconds = match stamp {
        s if s >= 1e14 => s / 1e6,
        s if s >= 1e11 => s / 1e3,
        s => s,
    };
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    Ok(Duration::from_secs_f64((now_s - seconds).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_milliseconds_and_microseconds_all_give_the_time_spent() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        assert!((ms(spent("t=1700000000.250", now).unwrap()) - 250.0).abs() < 1e-3);
        assert!((ms(spent("t=1700000000250", now).unwrap()) - 250.0).abs() < 1e-3);
        assert!((ms(spent("1700000000250000", now).unwrap()) - 250.0).abs() < 1e-3);
        assert_eq!(spent("t=1700000001.000", now).unwrap(), Duration::ZERO, "from the future: nothing spent");
    }

    #[test]
    fn a_malformed_stamp_is_refused_with_the_form_to_send() {
        for bad in ["", "t=", "t=soon", "t=-5", "t=NaN", "t=inf", "t=1e9", "t=5.", "t=.5", "t=+5"] {
            let e = spent(bad, SystemTime::now()).unwrap_err();
            assert!(e.contains("t=SECONDS.FRACTION"), "{bad:?}: {e}");
        }
    }
}
