//! Sizes as Docker prints them (go-units): the CLI's tables and the API server's progress.

/// Go's `fmt.Sprintf("%.*g", prec, v)` for `v >= 0`: `prec` significant digits, trailing
/// zeros dropped, the exponent form when the exponent is below -4 or at least `prec` (so
/// 999.9 at three digits is `1e+03`, as Docker prints it).
fn go_g(v: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if v == 0.0 {
        return "0".into();
    }
    let e = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |m: &str| {
        if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            m.to_string()
        }
    };
    if exp < -4 || exp >= prec as i32 {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    }
}

/// go-units' `CustomSize(format, size, base, units)` with `%.{prec}g%s`.
fn size(n: u64, prec: usize, base: f64, units: &[&str]) -> String {
    let mut v = n as f64;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    format!("{}{}", go_g(v, prec), units[i])
}

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// Docker's `units.HumanSize` (decimal, four significant digits): `system df`, prune's
/// reclaimed space, volume sizes.
pub fn human_size(n: u64) -> String {
    size(n, 4, 1000.0, &DECIMAL)
}

/// Docker's `units.HumanSizeWithPrecision(n, 3)`: image sizes, `ps -s`, `history`, the
/// NET I/O and BLOCK I/O of `stats`.
pub fn human_size3(n: u64) -> String {
    size(n, 3, 1000.0, &DECIMAL)
}

/// Docker's `units.BytesSize` (binary: KiB, MiB, GiB; four significant digits).
pub fn bytes_size(n: u64) -> String {
    size(
        n,
        4,
        1024.0,
        &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(bytes_size(32 << 20), "32MiB");
        assert_eq!(bytes_size(1536), "1.5KiB");
        // Docker's strings (go-units with %.4g and %.3g), corner cases included.
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1_999), "1.999kB");
        assert_eq!(human_size3(1_999), "2kB");
        assert_eq!(human_size3(1_240), "1.24kB");
        assert_eq!(human_size3(4_261_000), "4.26MB");
        assert_eq!(human_size3(12_345_678), "12.3MB");
        assert_eq!(human_size(12_345_678), "12.35MB");
        assert_eq!(human_size3(123_456_789), "123MB");
        assert_eq!(human_size3(999_600), "1e+03kB");
        assert_eq!(human_size(999_960), "1000kB");
        assert_eq!(human_size(999), "999B");
    }
}
