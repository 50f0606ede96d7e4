//! Price lists as data: the built-in ones (`catalogues.toml`, the product's prices) and any an
//! operator adds. One engine prices them all: a trial, prepaid packages, and per service a
//! pay-as-you-go tariff by day or by month with a free allowance and marginal tiers.

use super::money::{Currency, Money};
use super::BillingError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

named_enum! {
    /// What is metered and priced separately.
    #[derive(PartialOrd, Ord)]
    pub enum Service {
        /// Image moderation (`ImageModeration`, async tasks, batches).
        Image = "IMAGE",
        /// AI-generated image detection (`Type=IMAGE_AIGC`): pay-as-you-go only.
        Aigc = "AIGC",
        /// Image analysis (`tiia`): quality assessment (`AssessQuality`), per call.
        Quality = "QUALITY",
        /// Image analysis: smart cropping (`CropImage`), per call.
        Crop = "CROP",
        /// Image analysis: image tags (`DetectLabel`), per call.
        Label = "LABEL",
        /// Image analysis: vehicle recognition (`RecognizeCar`), per call.
        Car = "CAR",
        /// Image analysis: image search (`CreateImage`, `SearchImage`), per call.
        Search = "SEARCH",
    }
}

impl Service {
    /// Whether the trial and prepaid packages cover this service (the product's rule: AI-generated
    /// detection is pay-as-you-go only).
    pub fn prepaid(self) -> bool {
        self == Service::Image
    }
}

named_enum! {
    /// How often pay-as-you-go usage is settled, and the span its tiers and free allowance count
    /// over.
    pub enum Period {
        Day = "day",
        Month = "month",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    pub images: u64,
    pub days: u32,
}

/// A prepaid package on sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageOffer {
    /// The name customers buy it by, e.g. `1.8M`.
    pub offer: String,
    pub images: u64,
    pub price: Money,
    /// Valid this many calendar months from purchase.
    pub months: u32,
}

/// One price band: units up to `up_to` (the period's count; `None` for no bound) cost
/// `price` per `per` units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub up_to: Option<u64>,
    pub price_minor: i64,
    pub per: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tariff {
    pub period: Period,
    /// Units of each period that cost nothing.
    pub free: u64,
    pub tiers: Vec<Tier>,
}

impl Tariff {
    /// What `units` pay-as-you-go units of one period cost, in minor units, rounded half up.
    pub fn charge(&self, units: u64) -> i64 {
        // Sum exactly over the least common multiple of the tiers' `per`, round once.
        let scale = self.tiers.iter().fold(1u64, |l, t| lcm(l, t.per)) as i128;
        let mut lower = 0u64;
        let mut numerator: i128 = 0;
        for tier in &self.tiers {
            let upper = tier.up_to.unwrap_or(u64::MAX);
            let (from, to) = (lower.max(self.free), upper.min(units));
            if to > from {
                numerator += (to - from) as i128 * tier.price_minor as i128 * (scale / tier.per as i128);
            }
            lower = upper;
        }
        ((numerator + scale / 2) / scale) as i64
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

/// A price list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    pub name: String,
    pub description: String,
    pub currency: Currency,
    /// Granted once, at an account's first activation.
    pub trial: Option<Trial>,
    pub packages: Vec<PackageOffer>,
    pub pay_as_you_go: BTreeMap<Service, Tariff>,
    /// A package with no image used can be refunded this many days after purchase.
    pub refund_days: u32,
    /// Days a suspended account has to clear its arrears before its activation is destroyed.
    pub grace_days: u32,
}

impl Catalogue {
    pub fn offer(&self, name: &str) -> Result<&PackageOffer, BillingError> {
        self.packages.iter().find(|p| p.offer == name).ok_or_else(|| BillingError::UnknownOffer {
            offer: name.to_string(),
            offers: self.packages.iter().map(|p| p.offer.clone()).collect(),
        })
    }

    /// The tariff of a service; a list without one does not sell the service.
    pub fn tariff(&self, service: Service) -> Option<&Tariff> {
        self.pay_as_you_go.get(&service)
    }
}

/// Every price list by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogues(BTreeMap<String, Catalogue>);

impl Catalogues {
    /// The built-in lists, then those of `file` (which replace built-ins of the same name).
    pub fn load(file: Option<&Path>) -> Result<Catalogues, BillingError> {
        let mut all = parse(include_str!("catalogues.toml"))?;
        if let Some(file) = file {
            let text = std::fs::read_to_string(file)
                .map_err(|e| BillingError::Invalid(format!("catalogues file {}: {e}", file.display())))?;
            all.0.extend(parse(&text)?.0);
        }
        Ok(all)
    }

    pub fn get(&self, name: &str) -> Result<&Catalogue, BillingError> {
        self.0.get(name).ok_or_else(|| BillingError::UnknownCatalogue {
            name: name.to_string(),
            known: self.0.keys().cloned().collect(),
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Catalogue> {
        self.0.values()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default)]
    description: String,
    currency: Currency,
    refund_days: u32,
    grace_days: u32,
    trial: Option<Trial>,
    #[serde(default)]
    packages: Vec<RawOffer>,
    pay_as_you_go: BTreeMap<Service, RawTariff>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOffer {
    offer: String,
    images: u64,
    price: String,
    months: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTariff {
    period: Period,
    #[serde(default)]
    free: u64,
    tiers: Vec<RawTier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    up_to: Option<u64>,
    price: String,
    per: u64,
}

/// Parses and checks price lists in the `catalogues.toml` format.
pub fn parse(text: &str) -> Result<Catalogues, BillingError> {
    let raw: BTreeMap<String, RawCatalogue> =
        toml::from_str(text).map_err(|e| BillingError::Invalid(format!("price list: {e}")))?;
    let mut all = BTreeMap::new();
    for (name, raw) in raw {
        let invalid = |what: String| BillingError::Invalid(format!("price list `{name}`: {what}"));
        let price = |text: &str| {
            Money::parse(text, raw.currency).ok_or_else(|| invalid(format!("`{text}` is not a decimal amount")))
        };
        let mut packages = Vec::new();
        for offer in &raw.packages {
            if offer.images == 0 || offer.months == 0 || packages.iter().any(|p: &PackageOffer| p.offer == offer.offer)
            {
                return Err(invalid(format!("package `{}` needs images, months and a unique name", offer.offer)));
            }
            let price = price(&offer.price)?;
            packages.push(PackageOffer {
                offer: offer.offer.clone(),
                images: offer.images,
                price,
                months: offer.months,
            });
        }
        let mut pay_as_you_go = BTreeMap::new();
        for (service, tariff) in &raw.pay_as_you_go {
            let mut tiers = Vec::new();
            for (i, tier) in tariff.tiers.iter().enumerate() {
                let last = i + 1 == tariff.tiers.len();
                let rising = tiers.last().is_none_or(|prev: &Tier| prev.up_to < tier.up_to);
                if tier.per == 0 || tier.per > 1_000_000_000 || last != tier.up_to.is_none() || !(last || rising) {
                    return Err(invalid(format!(
                        "{} tiers need rising `up_to` bounds, none on the last, and `per` from 1 to 10^9",
                        service.as_str()
                    )));
                }
                tiers.push(Tier { up_to: tier.up_to, price_minor: price(&tier.price)?.minor, per: tier.per });
            }
            if tiers.is_empty() {
                return Err(invalid(format!("{} has no tiers", service.as_str())));
            }
            pay_as_you_go.insert(*service, Tariff { period: tariff.period, free: tariff.free, tiers });
        }
        let catalogue = Catalogue {
            name: name.clone(),
            description: raw.description,
            currency: raw.currency,
            trial: raw.trial,
            packages,
            pay_as_you_go,
            refund_days: raw.refund_days,
            grace_days: raw.grace_days,
        };
        all.insert(name, catalogue);
    }
    Ok(Catalogues(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built_in() -> Catalogues {
        Catalogues::load(None).unwrap()
    }

    #[test]
    fn the_product_prices_are_the_defaults() {
        let all = built_in();
        let cn = all.get("cn").unwrap();
        assert_eq!(cn.currency, Currency::Cny);
        assert_eq!(cn.trial, Some(Trial { images: 3000, days: 15 }));
        let offers: Vec<_> = cn.packages.iter().map(|p| (p.images, p.price.minor / 100, p.months)).collect();
        assert_eq!(
            offers,
            [
                (1_800_000, 4_000, 12),
                (7_200_000, 14_000, 12),
                (36_000_000, 63_000, 12),
                (180_000_000, 225_000, 12),
                (360_000_000, 360_000, 12)
            ]
        );
        let image = cn.tariff(Service::Image).unwrap();
        assert_eq!(image.charge(10_000), 2_500, "25 CNY per 10,000");
        assert_eq!(image.charge(1), 0, "0.25 fen rounds to nothing");
        assert_eq!(image.charge(2), 1, "0.5 fen rounds half up");
        assert_eq!(cn.tariff(Service::Aigc).unwrap().charge(7), 70, "0.10 CNY per image");
        assert_eq!((cn.refund_days, cn.grace_days), (30, 7));
        let intl = all.get("intl").unwrap();
        assert_eq!((intl.currency, intl.tariff(Service::Image).unwrap().charge(10_000)), (Currency::Usd, 1_650));
        assert!(all.get("nope").is_err());
    }

    #[test]
    fn monthly_tiers_are_marginal_after_the_free_allowance() {
        let all = built_in();
        let tiered = all.get("cn-monthly-tiered").unwrap().tariff(Service::Image).unwrap();
        assert_eq!(tiered.period, Period::Month);
        assert_eq!(tiered.charge(10_000), 0);
        assert_eq!(tiered.charge(11_000), 200, "1,000 calls over the allowance at 2 CNY per 1,000");
        assert_eq!(tiered.charge(1_000_000), 990 * 200);
        // 990k at 2, 2M at 1.5, 12M at 1.2, 1M at 1 (per 1,000 calls).
        assert_eq!(tiered.charge(16_000_000), 990 * 200 + 2_000 * 150 + 12_000 * 120 + 1_000 * 100);
        assert_eq!(tiered.charge(1_000_001), 990 * 200, "0.15 fen rounds down");
        assert_eq!(tiered.charge(1_000_004), 990 * 200 + 1, "0.6 fen rounds up");
    }

    #[test]
    fn bad_lists_are_refused_with_the_reason() {
        let base = "[x]\ncurrency = \"CNY\"\nrefund_days = 30\ngrace_days = 7\n";
        let bad = [
            "pay_as_you_go.IMAGE = { period = \"day\", tiers = [{ price = \"0.001\", per = 1 }] }",
            "pay_as_you_go.IMAGE = { period = \"day\", tiers = [{ price = \"1\", per = 0 }] }",
            "pay_as_you_go.IMAGE = { period = \"day\", tiers = [{ up_to = 5, price = \"1\", per = 1 }] }",
            "pay_as_you_go.IMAGE = { period = \"day\", tiers = [{ up_to = 5, price = \"1\", per = 1 }, { up_to = 3, price = \"1\", per = 1 }, { price = \"1\", per = 1 }] }",
            "pay_as_you_go.IMAGE = { period = \"day\", tiers = [] }",
            "pay_as_you_go.IMAGE = { period = \"week\", tiers = [{ price = \"1\", per = 1 }] }",
            "packages = [{ offer = \"a\", images = 0, price = \"1\", months = 12 }]\npay_as_you_go = {}",
        ];
        for text in bad {
            assert!(parse(&format!("{base}{text}\n")).is_err(), "{text}");
        }
        let ok = parse(&format!(
            "{base}pay_as_you_go.AIGC = {{ period = \"day\", tiers = [{{ price = \"1\", per = 3 }}] }}\n"
        ))
        .unwrap();
        assert_eq!(ok.get("x").unwrap().tariff(Service::Aigc).unwrap().charge(2), 67, "2/3 CNY rounds half up");
    }
}
