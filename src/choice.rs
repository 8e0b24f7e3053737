//! Options picked by name: on the command line (`arpg generate --schedule cosine`) and from the
//! page (`{schedule: "cosine"}`). Each such enum lists its values and spells each one; both edges
//! parse through [`parse`] (the enums' `FromStr`), so a name means the same everywhere and the
//! CLI's help lists exactly what the library accepts.

/// An enum whose values are picked by name.
pub trait Choice: Copy + Send + Sync + 'static {
    /// Every value, in the order help texts list them.
    const ALL: &'static [Self];
    /// What the value picks, for messages ("schedule").
    const WHAT: &'static str;
    /// The value's name: lower case, words joined by '-'.
    fn name(self) -> &'static str;
}

/// The value named `s`, or a message listing the names.
pub fn parse<T: Choice>(s: &str) -> Result<T, String> {
    T::ALL.iter().copied().find(|c| c.name() == s).ok_or_else(|| {
        let names: Vec<&str> = T::ALL.iter().map(|c| c.name()).collect();
        format!("unknown {} '{s}' ({})", T::WHAT, names.join(", "))
    })
}

/// `impl FromStr` through [`parse`] for enums that implement [`Choice`].
#[macro_export]
macro_rules! from_str_by_name {
    ($($t:ty),+) => {$(
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                $crate::choice::parse(s)
            }
        }
    )+};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::DType;
    use crate::config::Arch;

    fn round_trips<T: Choice + PartialEq + std::fmt::Debug>() {
        for &c in T::ALL {
            assert_eq!(parse::<T>(c.name()), Ok(c));
        }
    }

    #[test]
    fn every_name_parses_back_to_its_value() {
        round_trips::<Arch>();
        round_trips::<DType>();
        round_trips::<crate::sampling::Task>();
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_list_of_names() {
        assert_eq!(parse::<DType>("f16"), Err("unknown dtype 'f16' (f32, int8)".to_string()));
        assert!("INT8".parse::<DType>().is_err(), "names are lower case");
    }
}
