//! Serde helpers that round-trip floats exactly, non-finite ones included, for
//! `#[serde(with = "stride_monitor::exact")]` on `f64` fields and on containers of them
//! (`Option`, `Vec`, `VecDeque`, pairs).
//!
//! A finite float is written as a JSON number (unchanged from serde's own format); serde_json
//! writes infinities and NaN as `null`, which reads back as `None` or fails, so they are
//! written as `"inf"`, `"-inf"` and `"NaN"` (a NaN with another payload as `"NaN:<hex bits>"`).
//! A monitor restored from a checkpoint must continue bit for bit: its minima start at
//! infinity and half-lives are infinite when nothing decreases.

use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;

/// A value whose floats serialise exactly (see the module docs).
pub trait Exact: Sized {
    /// Serialises `self`.
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error>;
    /// Deserialises a value written by [`Exact::ser`].
    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// For `#[serde(with = "exact")]`.
pub fn serialize<T: Exact, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    v.ser(s)
}

/// For `#[serde(with = "exact")]`.
pub fn deserialize<'de, T: Exact, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    T::de(d)
}

struct Out<'a, T>(&'a T);

impl<T: Exact> Serialize for Out<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.ser(s)
    }
}

struct In<T>(T);

impl<'de, T: Exact> Deserialize<'de> for In<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::de(d).map(In)
    }
}

/// The text form of a non-finite float.
fn name(x: f64) -> String {
    if x == f64::INFINITY {
        "inf".into()
    } else if x == f64::NEG_INFINITY {
        "-inf".into()
    } else if x.to_bits() == f64::NAN.to_bits() {
        "NaN".into()
    } else {
        format!("NaN:{:x}", x.to_bits())
    }
}

struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, \"inf\", \"-inf\" or \"NaN\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "inf" => Ok(f64::INFINITY),
            "-inf" => Ok(f64::NEG_INFINITY),
            "NaN" => Ok(f64::NAN),
            _ => v
                .strip_prefix("NaN:")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .map(f64::from_bits)
                .filter(|x| x.is_nan())
                .ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

impl Exact for f64 {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_finite() {
            s.serialize_f64(*self)
        } else {
            s.serialize_str(&name(*self))
        }
    }

    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FloatVisitor)
    }
}

/// Types without floats: serde's own format.
macro_rules! plain {
    ($($t:ty),*) => {$(
        impl Exact for $t {
            fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.serialize(s)
            }

            fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize(d)
            }
        }
    )*};
}

plain!(bool, u64);

impl<T: Exact> Exact for Option<T> {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Some(v) => s.serialize_some(&Out(v)),
            None => s.serialize_none(),
        }
    }

    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<In<T>>::deserialize(d)?.map(|In(v)| v))
    }
}

impl<A: Exact, B: Exact> Exact for (A, B) {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (Out(&self.0), Out(&self.1)).serialize(s)
    }

    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (In(a), In(b)) = <(In<A>, In<B>)>::deserialize(d)?;
        Ok((a, b))
    }
}

impl<T: Exact> Exact for Vec<T> {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Out))
    }

    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<In<T>>::deserialize(d)?.into_iter().map(|In(v)| v).collect())
    }
}

impl<T: Exact> Exact for VecDeque<T> {
    fn ser<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Out))
    }

    fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<In<T>>::deserialize(d)?.into_iter().map(|In(v)| v).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    struct Sample {
        #[serde(with = "crate::exact")]
        x: Vec<f64>,
        #[serde(with = "crate::exact")]
        o: Option<(f64, bool)>,
    }

    #[test]
    fn every_float_comes_back_bit_for_bit() {
        let odd_nan = f64::from_bits(f64::NAN.to_bits() ^ 0x5);
        let x = vec![
            0.1,
            -0.0,
            1.0 / 3.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            odd_nan,
            0.30000000000000004,
            2.220446049250313e-16,
        ];
        let s = Sample {
            x: x.clone(),
            o: Some((f64::INFINITY, true)),
        };
        let text = serde_json::to_string(&serde_json::to_value(&s).unwrap()).unwrap();
        let back: Sample = serde_json::from_value(serde_json::from_str(&text).unwrap()).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.x), bits(&x), "{text}");
        assert_eq!(
            back.o.map(|(a, b)| (a.to_bits(), b)),
            Some((f64::INFINITY.to_bits(), true))
        );
        let bad: Result<Sample, _> = serde_json::from_str(r#"{"x": ["infinity"], "o": null}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn random_floats_round_trip_through_json_text() {
        let mut r: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            let x = f64::from_bits(r);
            let text = serde_json::to_string(&Out(&x)).unwrap();
            let In(back): In<f64> = serde_json::from_str(&text).unwrap();
            assert_eq!(back.to_bits(), x.to_bits(), "{text}");
        }
    }
}
