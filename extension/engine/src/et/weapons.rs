//! The weapon part of a player line: a bitmask over weapon indices, then five numbers per set bit.

use super::error::{parse_count, quote, EtParseErrorKind};

/// How many weapon indices the format knows (ET:Legacy `extWeaponStats_t`, 0–27).
pub const WEAPON_COUNT: usize = 28;

/// Index of the medic syringe, whose hits are revives.
pub const SYRINGE_INDEX: u8 = 27;

/// Display names by weapon index (spec §5.1).
pub const WEAPON_NAMES: [&str; WEAPON_COUNT] = [
    "Knife",
    "Ka-Bar knife",
    "Luger",
    "Colt",
    "MP40",
    "Thompson",
    "Sten",
    "FG42",
    "Panzerfaust",
    "Bazooka",
    "Flamethrower",
    "Hand grenade",
    "Mortar",
    "Mortar 2",
    "Dynamite",
    "Airstrike",
    "Artillery",
    "Satchel charge",
    "Rifle grenade",
    "Landmine",
    "MG42",
    "Browning",
    "Carbine",
    "Kar98",
    "Garand",
    "K43",
    "MP34",
    "Syringe",
];

/// One weapon's numbers for one player.
///
/// In a round-2 file all five numbers are cumulative over both rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WeaponStats {
    /// Weapon index 0–27.
    pub index: u8,
    /// Damaging hits (for the syringe: revives).
    pub hits: u32,
    /// Attempts.
    pub shots: u32,
    /// Kills made with this weapon.
    pub kills: u32,
    /// Times this player was killed *by* this weapon.
    pub deaths: u32,
    /// Headshot hits (not headshot kills).
    pub headshots: u32,
}

impl WeaponStats {
    /// The weapon's display name.
    pub fn name(&self) -> &'static str {
        WEAPON_NAMES
            .get(usize::from(self.index))
            .copied()
            .unwrap_or("Unknown")
    }
}

/// Parses `<mask> h s k d hs …` (whitespace-separated) into weapons in ascending index order.
pub(crate) fn parse_weapon_part(tokens: &[&str]) -> Result<Vec<WeaponStats>, EtParseErrorKind> {
    let Some((mask_text, numbers)) = tokens.split_first() else {
        return Err(EtParseErrorKind::BadNumber {
            field: "weapon mask".into(),
            value: String::new(),
        });
    };
    let mask: u64 = mask_text.parse().map_err(|_| EtParseErrorKind::BadNumber {
        field: "weapon mask".into(),
        value: quote(mask_text),
    })?;
    if mask >> WEAPON_COUNT != 0 {
        return Err(EtParseErrorKind::WeaponMaskOutOfRange { mask });
    }
    // popcount ≤ 28, so this cannot overflow.
    let expected = 5 * mask.count_ones() as usize;
    if numbers.len() != expected {
        return Err(EtParseErrorKind::WeaponCount {
            mask,
            expected,
            found: numbers.len(),
        });
    }
    let indices = (0..WEAPON_COUNT as u8).filter(|i| mask & (1u64 << i) != 0);
    let mut weapons = Vec::with_capacity(expected / 5);
    for (index, group) in indices.zip(numbers.chunks_exact(5)) {
        let number = |position: usize, what: &str| -> Result<u32, EtParseErrorKind> {
            let field = format!(
                "{what} for weapon {index} ({})",
                WEAPON_NAMES[usize::from(index)]
            );
            // parse_count keeps it within 0..=i32::MAX, so it fits.
            parse_count(&field, group[position]).map(|n| n as u32)
        };
        weapons.push(WeaponStats {
            index,
            hits: number(0, "hits")?,
            shots: number(1, "shots")?,
            kills: number(2, "kills")?,
            deaths: number(3, "deaths")?,
            headshots: number(4, "headshots")?,
        });
    }
    Ok(weapons)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    #[test]
    fn parses_weapons_in_index_order() {
        // mask 0b1000...0000101 = knife (0), colt (3)... here 1 + 8 + 2^27.
        let mask = 1u64 + 8 + (1 << 27);
        let line = format!("{mask} 1 2 3 4 5 6 7 8 9 10 11 12 0 0 0");
        let weapons = parse_weapon_part(&tokens(&line)).unwrap();
        assert_eq!(weapons.len(), 3);
        assert_eq!(weapons[0].name(), "Knife");
        assert_eq!((weapons[1].index, weapons[1].kills), (3, 8));
        assert_eq!(weapons[1].name(), "Colt");
        assert_eq!((weapons[2].index, weapons[2].hits), (27, 11));
        assert_eq!(weapons[2].name(), "Syringe");
    }

    #[test]
    fn rejects_wrong_counts_and_masks() {
        assert!(matches!(
            parse_weapon_part(&tokens("3 1 2 3 4 5 6 7 8 9")),
            Err(EtParseErrorKind::WeaponCount {
                mask: 3,
                expected: 10,
                found: 9
            })
        ));
        assert!(matches!(
            parse_weapon_part(&tokens("268435456")),
            Err(EtParseErrorKind::WeaponMaskOutOfRange { .. })
        ));
        assert!(matches!(
            parse_weapon_part(&tokens("1 1 2 x 4 5")),
            Err(EtParseErrorKind::BadNumber { .. })
        ));
        // Negative and too large numbers fall under the one range rule, like extended fields.
        assert_eq!(
            parse_weapon_part(&tokens("1 1 2 -3 4 5"))
                .unwrap_err()
                .to_string(),
            "kills for weapon 0 (Knife) -3 is out of range (0 to 2147483647)"
        );
        assert_eq!(
            parse_weapon_part(&tokens("1 2147483648 2 3 4 5"))
                .unwrap_err()
                .to_string(),
            "hits for weapon 0 (Knife) 2147483648 is out of range (0 to 2147483647)"
        );
        assert_eq!(
            parse_weapon_part(&tokens("1 2147483647 2 3 4 5")).unwrap()[0].hits,
            2_147_483_647
        );
        assert!(parse_weapon_part(&[]).is_err());
        assert_eq!(parse_weapon_part(&tokens("0")).unwrap(), vec![]);
    }
}
