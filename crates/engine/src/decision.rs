//! How findings become the verdict of a request.
//!
//! Every detector that looks at an image reports [`Finding`]s, each already judged against the
//! policy's thresholds. [`decide`] is the one rule that picks the answer: the most severe
//! suggestion wins (Block over Review over Pass); among equally severe findings the label with
//! the higher priority ([`Label::PRIORITY`]) wins, then the higher score. When nothing reached
//! Review (findings that pass are only scores) the image passes as `Normal` with score 0; the
//! per-label scores remain in the label results.

named_enum! {
    /// Ordered by severity.
    #[derive(PartialOrd, Ord)]
    pub enum Suggestion {
        Pass = "Pass",
        Review = "Review",
        Block = "Block",
    }
}

named_enum! {
    /// The labels of the API, as the cloud spells them.
    pub enum Label {
        Normal = "Normal",
        Porn = "Porn",
        Sexy = "Sexy",
        Terror = "Terror",
        Polity = "Polity",
        Illegal = "Illegal",
        Abuse = "Abuse",
        Ad = "Ad",
        Teenager = "Teenager",
        Custom = "Custom",
        /// AI-generated (`Type=IMAGE_AIGC`).
        Aigc = "AIGC",
    }
}

impl Label {
    /// Tie-break order, most serious first: a customer would rather hear "Porn" than "Sexy"
    /// for an image that reached Block on both.
    pub const PRIORITY: [Label; 11] = [
        Label::Porn,
        Label::Terror,
        Label::Polity,
        Label::Illegal,
        Label::Teenager,
        Label::Abuse,
        Label::Sexy,
        Label::Ad,
        Label::Custom,
        Label::Aigc,
        Label::Normal,
    ];

    pub fn rank(self) -> usize {
        Label::PRIORITY.iter().position(|&l| l == self).expect("every label has a priority")
    }
}

/// A model probability (0-1) as the API's integer score (0-100).
pub fn points(probability: f32) -> u8 {
    (probability * 100.0).round().clamp(0.0, 100.0) as u8
}

/// One detector's judgement of one label, after the policy's thresholds were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub label: Label,
    pub sub_label: String,
    /// 0-100.
    pub score: u8,
    pub suggestion: Suggestion,
}

/// The verdict of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub suggestion: Suggestion,
    pub label: Label,
    pub sub_label: String,
    pub score: u8,
}

impl From<Finding> for Decision {
    fn from(f: Finding) -> Decision {
        Decision { suggestion: f.suggestion, label: f.label, sub_label: f.sub_label, score: f.score }
    }
}

/// How severe a verdict is: suggestion first, then label priority, then score.
fn severity(suggestion: Suggestion, label: Label, score: u8) -> (Suggestion, std::cmp::Reverse<usize>, u8) {
    (suggestion, std::cmp::Reverse(label.rank()), score)
}

/// The one decision rule (see the module documentation).
pub fn decide(findings: &[Finding]) -> Decision {
    findings
        .iter()
        .filter(|f| f.suggestion != Suggestion::Pass)
        .max_by_key(|f| severity(f.suggestion, f.label, f.score))
        .map(|f| Decision::from(f.clone()))
        .unwrap_or(Decision { suggestion: Suggestion::Pass, label: Label::Normal, sub_label: String::new(), score: 0 })
}

/// The most severe of several verdicts (one per frame of an animated image), by the same
/// order as [`decide`]; the earliest wins a tie.
pub fn worst<T>(verdicts: impl IntoIterator<Item = (T, Decision)>) -> Option<(T, Decision)> {
    verdicts.into_iter().fold(None, |best, (item, d)| match best {
        Some((_, ref b)) if severity(d.suggestion, d.label, d.score) <= severity(b.suggestion, b.label, b.score) => {
            best
        }
        _ => Some((item, d)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(label: Label, score: u8, suggestion: Suggestion) -> Finding {
        Finding { label, sub_label: String::new(), score, suggestion }
    }

    #[test]
    fn nothing_found_passes() {
        let d = decide(&[]);
        assert_eq!((d.suggestion, d.label, d.score), (Suggestion::Pass, Label::Normal, 0));
    }

    #[test]
    fn scores_that_pass_answer_normal() {
        let d = decide(&[f(Label::Porn, 30, Suggestion::Pass), f(Label::Sexy, 20, Suggestion::Pass)]);
        assert_eq!((d.suggestion, d.label, d.score), (Suggestion::Pass, Label::Normal, 0));
    }

    #[test]
    fn severity_wins_over_score() {
        let d = decide(&[f(Label::Sexy, 99, Suggestion::Review), f(Label::Ad, 60, Suggestion::Block)]);
        assert_eq!((d.suggestion, d.label), (Suggestion::Block, Label::Ad));
    }

    #[test]
    fn priority_breaks_ties_then_score() {
        let d = decide(&[f(Label::Sexy, 99, Suggestion::Block), f(Label::Porn, 80, Suggestion::Block)]);
        assert_eq!(d.label, Label::Porn);
        let d = decide(&[f(Label::Porn, 80, Suggestion::Review), f(Label::Porn, 90, Suggestion::Review)]);
        assert_eq!(d.score, 90);
    }

    #[test]
    fn the_worst_frame_and_the_first_of_equals() {
        let pass = decide(&[]);
        let review = decide(&[f(Label::Sexy, 70, Suggestion::Review)]);
        let (frame, d) = worst([(0, pass.clone()), (5, review.clone()), (10, review.clone()), (15, pass)]).unwrap();
        assert_eq!((frame, d), (5, review));
        assert_eq!(worst(Vec::<(u32, Decision)>::new()), None);
    }

    #[test]
    fn every_label_has_a_priority() {
        for l in Label::PRIORITY {
            assert_eq!(Label::PRIORITY[l.rank()], l);
        }
    }
}
