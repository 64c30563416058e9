//! Series encoded straight from the last snapshot, with no state of their
//! own: the hosts' resources (one series per host, the `host` label only;
//! a host without a current sample has none) and Escalator's commit
//! histograms (buckets kept by Escalator, read with its `Stats`).

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use vigie_wire::escalator::Histogram;
use vigie_wire::observe::HostSample;

/// A series of one host.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub host: String,
}

type Read = fn(&HostSample) -> f64;

/// Gauges: name, help, unit, value.
const GAUGES: &[(&str, &str, Option<Unit>, Read)] = &[
    ("host_cpus", "CPUs of the host", None, |s| f64::from(s.cpus)),
    ("host_load1", "Load average over 1 minute", None, |s| {
        f64::from(s.load_centi[0]) / 100.0
    }),
    ("host_load5", "Load average over 5 minutes", None, |s| {
        f64::from(s.load_centi[1]) / 100.0
    }),
    ("host_load15", "Load average over 15 minutes", None, |s| {
        f64::from(s.load_centi[2]) / 100.0
    }),
    (
        "host_memory_total",
        "Memory of the host",
        Some(Unit::Bytes),
        |s| s.memory_total_bytes as f64,
    ),
    (
        "host_memory_available",
        "Memory available for new work (MemAvailable)",
        Some(Unit::Bytes),
        |s| s.memory_available_bytes as f64,
    ),
    (
        "host_disk_total",
        "Size of the filesystem holding the host's root",
        Some(Unit::Bytes),
        |s| s.disk_total_bytes as f64,
    ),
    (
        "host_disk_available",
        "Space available to unprivileged users on the root's filesystem",
        Some(Unit::Bytes),
        |s| s.disk_available_bytes as f64,
    ),
    (
        "host_uptime",
        "Time since the host booted",
        Some(Unit::Seconds),
        |s| s.uptime_ms as f64 / 1000.0,
    ),
    (
        "host_services",
        "Replicas of deployed services found on the host",
        None,
        |s| (s.services.len() as u64 + u64::from(s.services_omitted)) as f64,
    ),
    (
        "host_services_running",
        "Replicas of deployed services whose supervisor is alive (of those listed)",
        None,
        |s| s.services.iter().filter(|x| x.running).count() as f64,
    ),
];

/// Counters (`_total` added by the encoder).
const COUNTERS: &[(&str, &str, Read)] = &[
    (
        "host_cpu_busy",
        "CPU time spent busy since boot, all CPUs",
        |s| s.cpu_busy_ms as f64 / 1000.0,
    ),
    (
        "host_cpu_idle",
        "CPU time spent idle or waiting for I/O since boot, all CPUs",
        |s| s.cpu_idle_ms as f64 / 1000.0,
    ),
];

/// Counters without a unit (`_total` added by the encoder).
const EVENT_COUNTERS: &[(&str, &str, Read)] = &[
    (
        "host_replica_restarts",
        "Replicas the host's health watch restarted since its agent started",
        |s| s.replica_restarts as f64,
    ),
    (
        "host_replicas_given_up",
        "Replicas restarted too often, stopped and left stopped, since the agent started",
        |s| f64::from(s.replicas_given_up),
    ),
];

pub fn encode(samples: &[HostSample], encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    if samples.is_empty() {
        return Ok(());
    }
    for (name, help, read) in EVENT_COUNTERS {
        let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for s in samples {
            let labels = HostLabels {
                host: s.host.clone(),
            };
            ConstCounter::new(read(s)).encode(m.encode_family(&labels)?)?;
        }
    }
    for (name, help, unit, read) in GAUGES {
        let mut m = encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
        for s in samples {
            let labels = HostLabels {
                host: s.host.clone(),
            };
            ConstGauge::new(read(s)).encode(m.encode_family(&labels)?)?;
        }
    }
    for (name, help, read) in COUNTERS {
        let mut m =
            encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Counter)?;
        for s in samples {
            let labels = HostLabels {
                host: s.host.clone(),
            };
            ConstCounter::new(read(s)).encode(m.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// A histogram from Escalator's buckets; `scale` turns its integer
/// values into the base unit. Absent when Escalator keeps none (older).
pub fn encode_histogram(
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    h: &Histogram,
    scale: f64,
    encoder: &mut DescriptorEncoder,
) -> std::fmt::Result {
    if h.bounds.is_empty() || h.counts.len() != h.bounds.len() + 1 {
        return Ok(());
    }
    let buckets: Vec<(f64, u64)> = h
        .bounds
        .iter()
        .map(|b| *b as f64 * scale)
        .chain([f64::MAX])
        .zip(h.counts.iter().copied())
        .collect();
    let mut m = encoder.encode_descriptor(name, help, unit, MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(h.sum as f64 * scale, h.count, &buckets, None)
}
