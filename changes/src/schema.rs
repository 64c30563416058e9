//! The shape of a change file as serde reads it. Steps and checks are read
//! through their own visitors so that the rules tying their keys together
//! run while the parser still knows where the step starts: a rule error then
//! carries the step's line.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use vigie_wire::change::Step;

use crate::raw::{CheckSpec, RawProbe, RawStep};
use crate::step::{build_probe, build_step};
use crate::values::Label;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeFile {
    pub title: Label,
    pub steps: Steps,
}

/// The `steps` list: at least one step.
#[derive(Debug)]
pub(crate) struct Steps(pub Vec<Step>);

struct StepVisitor;
struct StepsVisitor;
struct CheckVisitor;

impl<'de> Deserialize<'de> for Steps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(StepsVisitor)
    }
}

impl<'de> Visitor<'de> for StepsVisitor {
    type Value = Steps;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of steps")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Steps, A::Error> {
        let mut steps = Vec::new();
        while let Some(StepEntry(step)) = seq.next_element()? {
            steps.push(step);
        }
        if steps.is_empty() {
            return Err(de::Error::custom("a change needs at least one step"));
        }
        Ok(Steps(steps))
    }
}

struct StepEntry(Step);

impl<'de> Deserialize<'de> for StepEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StepVisitor)
    }
}

impl<'de> Visitor<'de> for StepVisitor {
    type Value = StepEntry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a step (a mapping with one of run, file, remove, check)")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StepEntry, A::Error> {
        let raw = RawStep::deserialize(MapAccessDeserializer::new(map))?;
        build_step(raw).map(StepEntry).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for CheckSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckVisitor)
    }
}

impl<'de> Visitor<'de> for CheckVisitor {
    type Value = CheckSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a check (a mapping with command or http)")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<CheckSpec, A::Error> {
        let raw = RawProbe::deserialize(MapAccessDeserializer::new(map))?;
        build_probe(raw).map(CheckSpec).map_err(de::Error::custom)
    }
}
