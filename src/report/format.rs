//! Numbers as people read them: `3.2M` tokens, `1m 05s`, `0.0123`, `3.0e-4`.

/// A metric value or axis tick: about 3 significant digits, no trailing zeros.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    // Axis ticks computed as sums land on 1e-20 instead of 0.
    if a < 1e-15 {
        return "0".into();
    }
    if a >= 1e6 {
        return count(v);
    }
    if a >= 1e4 {
        return format!("{}k", trim(format!("{:.1}", v / 1e3)));
    }
    if a >= 100.0 {
        return format!("{}", v.round());
    }
    if a >= 1e-3 {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        return trim(format!("{v:.decimals$}"));
    }
    format!("{v:.1e}")
}

/// A count of parameters or tokens: `812`, `45.3k`, `3.21M`, `1.2B`.
pub fn count(v: f64) -> String {
    let a = v.abs();
    let (div, unit) = if a >= 1e9 {
        (1e9, "B")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        return format!("{}", v.round());
    };
    let scaled = v / div;
    let decimals = if scaled.abs() >= 100.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{}{unit}", trim(format!("{scaled:.decimals$}")))
}

/// A wall-clock duration: `850ms`, `12.3s`, `4m 05s`, `2h 03m`.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "—".into();
    }
    if seconds < 1.0 {
        return format!("{:.0}ms", seconds * 1e3);
    }
    if seconds < 60.0 {
        return format!("{}s", trim(format!("{seconds:.1}")));
    }
    let s = seconds.round() as u64;
    if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-2.7e-20), "0");
        assert_eq!(number(2.3456), "2.35");
        assert_eq!(number(0.012345), "0.0123");
        assert_eq!(number(0.0003), "3.0e-4");
        assert_eq!(number(450.4), "450");
        assert_eq!(number(12_345.0), "12.3k");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(-0.5), "-0.5");
        assert_eq!(count(3_210_000.0), "3.21M");
        assert_eq!(count(45_300.0), "45.3k");
        assert_eq!(count(812.0), "812");
        assert_eq!(count(124_000_000.0), "124M");
        assert_eq!(duration(0.25), "250ms");
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(245.0), "4m 05s");
        assert_eq!(duration(7380.0), "2h 03m");
    }
}
