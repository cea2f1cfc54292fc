//! Inference logging (Databricks' `auto_capture_config`): a sampled fraction of an endpoint's
//! requests, with their answers, appended as Parquet files under
//! `<artifacts destination>/serving-logs/<endpoint>/` — a Parquet dataset that pandas
//! (`read_parquet(dir)`) and DuckDB (`read_parquet('dir/*.parquet')`) read as one table.
//!
//! The request path only samples and hands a record to a bounded channel (a full channel
//! drops the record and counts it); a background task encodes and writes a file every
//! `flush_interval_ms` or `MAX_ROWS_PER_FILE` records, and flushes what is left when the
//! endpoint's config changes or the endpoint is deleted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferroflow_core::{now_millis, Error, Result};
use ferroflow_tracking::artifacts::ArtifactService;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Records per Parquet file at most.
const MAX_ROWS_PER_FILE: usize = 10_000;
/// Records waiting for the writer; beyond this, records are dropped (and counted).
const QUEUE: usize = 50_000;

/// `auto_capture_config` of an endpoint config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AutoCaptureConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Fraction of requests logged, in (0, 1]; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    /// How often buffered records are written, in milliseconds (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval_ms: Option<u64>,
}

impl AutoCaptureConfig {
    /// The checked sampling fraction and flush interval.
    pub fn check(&self) -> Result<(f64, Duration)> {
        let rate = self.sample_rate.unwrap_or(1.0);
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(Error::invalid(format!(
                "auto_capture_config.sample_rate must be in (0, 1], got {rate}"
            )));
        }
        let ms = self.flush_interval_ms.unwrap_or(1000);
        if !(100..=3_600_000).contains(&ms) {
            return Err(Error::invalid(format!(
                "auto_capture_config.flush_interval_ms must be between 100 and 3600000, got {ms}"
            )));
        }
        Ok((rate, Duration::from_millis(ms)))
    }
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct CaptureRecord {
    pub request_id: String,
    pub timestamp_ms: i64,
    pub latency_us: i64,
    pub status_code: i32,
    pub served_model: String,
    pub served_version: String,
    pub request: Bytes,
    pub response: String,
}

/// The sending side held by an endpoint; dropping it flushes and stops the writer.
pub struct CaptureSink {
    rate: f64,
    tx: mpsc::Sender<CaptureRecord>,
    dropped: Arc<AtomicU64>,
    /// Where the files go, relative to the artifacts destination.
    pub location: String,
}

impl CaptureSink {
    /// Starts the writer task for `endpoint`.
    pub fn start(
        endpoint: &str,
        config: &AutoCaptureConfig,
        artifacts: ArtifactService,
    ) -> Result<Self> {
        let (rate, interval) = config.check()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let location = format!("serving-logs/{endpoint}");
        tokio::spawn(write_loop(rx, location.clone(), interval, artifacts));
        Ok(CaptureSink {
            rate,
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
            location,
        })
    }

    /// Whether this request is logged (the sampling draw).
    pub fn sampled(&self) -> bool {
        self.rate >= 1.0 || super::random_fraction() < self.rate
    }

    /// Queues a record without waiting; a full queue drops it.
    pub fn record(&self, record: CaptureRecord) {
        if self.tx.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<CaptureRecord>,
    location: String,
    interval: Duration,
    artifacts: ArtifactService,
) {
    let mut buffer: Vec<CaptureRecord> = Vec::new();
    let mut tick = tokio::time::interval(interval);
    loop {
        let closed = tokio::select! {
            got = rx.recv() => match got {
                Some(r) => {
                    buffer.push(r);
                    if buffer.len() < MAX_ROWS_PER_FILE {
                        continue;
                    }
                    false
                }
                None => true,
            },
            _ = tick.tick() => false,
        };
        if !buffer.is_empty() {
            let batch = std::mem::take(&mut buffer);
            if let Err(e) = flush(&location, batch, &artifacts).await {
                tracing::warn!("inference log write to {location} failed: {}", e.message);
            }
        }
        if closed {
            return;
        }
    }
}

async fn flush(
    location: &str,
    batch: Vec<CaptureRecord>,
    artifacts: &ArtifactService,
) -> Result<()> {
    let rows = batch.len();
    let bytes = tokio::task::spawn_blocking(move || encode(&batch))
        .await
        .map_err(|e| Error::internal(format!("inference log encoding panicked: {e}")))??;
    let path = format!(
        "{location}/part-{}-{}.parquet",
        now_millis(),
        uuid::Uuid::new_v4().simple()
    );
    let chunks = futures_util::stream::iter(vec![Ok::<Bytes, std::io::Error>(bytes)]);
    artifacts.upload(&path, chunks).await?;
    tracing::debug!("wrote {rows} inference log records to {path}");
    Ok(())
}

const SCHEMA: &str = "message inference_log {
    REQUIRED BYTE_ARRAY request_id (UTF8);
    REQUIRED INT64 timestamp_ms (TIMESTAMP(MILLIS, true));
    REQUIRED INT64 latency_us;
    REQUIRED INT32 status_code;
    REQUIRED BYTE_ARRAY served_model (UTF8);
    REQUIRED BYTE_ARRAY served_version (UTF8);
    REQUIRED BYTE_ARRAY request (UTF8);
    REQUIRED BYTE_ARRAY response (UTF8);
}";

/// One Parquet file (one row group) holding `batch`.
pub fn encode(batch: &[CaptureRecord]) -> Result<Bytes> {
    let fail = |e: parquet::errors::ParquetError| {
        Error::internal(format!("encoding the inference log as Parquet failed: {e}"))
    };
    let schema = Arc::new(parse_message_type(SCHEMA).map_err(fail)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::UNCOMPRESSED)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(Vec::new(), schema, props).map_err(fail)?;
    let mut group = writer.next_row_group().map_err(fail)?;
    let text = |f: fn(&CaptureRecord) -> &[u8]| -> Vec<ByteArray> {
        batch
            .iter()
            .map(|r| ByteArray::from(f(r).to_vec()))
            .collect()
    };
    let columns: [Column; 8] = [
        Column::Text(text(|r| r.request_id.as_bytes())),
        Column::Int64(batch.iter().map(|r| r.timestamp_ms).collect()),
        Column::Int64(batch.iter().map(|r| r.latency_us).collect()),
        Column::Int32(batch.iter().map(|r| r.status_code).collect()),
        Column::Text(text(|r| r.served_model.as_bytes())),
        Column::Text(text(|r| r.served_version.as_bytes())),
        Column::Text(text(|r| &r.request)),
        Column::Text(text(|r| r.response.as_bytes())),
    ];
    for column in columns {
        let mut w = group
            .next_column()
            .map_err(fail)?
            .ok_or_else(|| Error::internal("inference log schema has fewer columns"))?;
        match column {
            Column::Text(v) => w.typed::<ByteArrayType>().write_batch(&v, None, None),
            Column::Int64(v) => w.typed::<Int64Type>().write_batch(&v, None, None),
            Column::Int32(v) => w.typed::<Int32Type>().write_batch(&v, None, None),
        }
        .map_err(fail)?;
        w.close().map_err(fail)?;
    }
    group.close().map_err(fail)?;
    Ok(Bytes::from(writer.into_inner().map_err(fail)?))
}

enum Column {
    Text(Vec<ByteArray>),
    Int64(Vec<i64>),
    Int32(Vec<i32>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_rate_and_interval_are_checked() {
        let cfg = |rate: Option<f64>, ms: Option<u64>| AutoCaptureConfig {
            enabled: true,
            sample_rate: rate,
            flush_interval_ms: ms,
        };
        assert!(cfg(None, None).check().is_ok());
        assert!(cfg(Some(0.0), None).check().is_err());
        assert!(cfg(Some(1.5), None).check().is_err());
        assert!(cfg(Some(0.1), Some(10)).check().is_err());
    }

    #[test]
    fn encodes_a_parquet_file() {
        let rec = CaptureRecord {
            request_id: "r1".into(),
            timestamp_ms: 1,
            latency_us: 2,
            status_code: 200,
            served_model: "m".into(),
            served_version: "1".into(),
            request: Bytes::from_static(b"{}"),
            response: "{\"predictions\": []}".into(),
        };
        let bytes = encode(&[rec.clone(), rec]).unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
    }
}
