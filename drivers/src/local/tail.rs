//! Keeps the last bytes of a process's output, read on its own thread so
//! a chatty process never blocks on a full pipe.

use std::io::Read;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How much of each stream a step result keeps.
pub(crate) const TAIL_BYTES: usize = 4096;

pub(crate) struct TailReader {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Option<mpsc::Receiver<()>>,
}

impl TailReader {
    /// `copy`, when given, gets every byte read (the plug's full logs).
    pub fn spawn(
        source: Option<impl Read + Send + 'static>,
        stream: &'static str,
        copy: Option<Arc<dyn crate::OutputSink>>,
    ) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let Some(mut source) = source else {
            return Self { buf, done: None };
        };
        let (tx, rx) = mpsc::channel();
        let shared = Arc::clone(&buf);
        let spawned = std::thread::Builder::new()
            .name(format!("vigie-{stream}"))
            .spawn(move || {
                let mut chunk = [0u8; 8192];
                // Ends at EOF or on a read error; either way the tail so
                // far is what there is. Dropping `tx` signals the end.
                while let Ok(n @ 1..) = source.read(&mut chunk) {
                    if let Some(copy) = &copy {
                        copy.write(stream, &chunk[..n]);
                    }
                    let mut buf = shared.lock().unwrap_or_else(|p| p.into_inner());
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > 2 * TAIL_BYTES {
                        let cut = buf.len() - TAIL_BYTES;
                        buf.drain(..cut);
                    }
                }
                drop(tx);
            });
        match spawned {
            Ok(_) => Self {
                buf,
                done: Some(rx),
            },
            Err(e) => {
                // The pipe is dropped with the closure: the process gets
                // EPIPE on write instead of blocking forever.
                tracing::warn!(event = "reader_failed", stream, error = %e);
                Self { buf, done: None }
            }
        }
    }

    /// The last [`TAIL_BYTES`] read once the stream ended, or by `deadline`
    /// if something (a background grandchild) still holds the pipe open;
    /// the reader thread is then left to end on its own.
    pub fn finish(self, deadline: Instant) -> String {
        if let Some(done) = self.done {
            let wait = deadline.saturating_duration_since(Instant::now());
            if let Err(mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(wait) {
                tracing::debug!(event = "output_detached");
            }
        }
        let buf = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        let start = buf.len().saturating_sub(TAIL_BYTES);
        String::from_utf8_lossy(&buf[start..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keeps_only_the_tail() {
        let data: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let reader = TailReader::spawn(Some(std::io::Cursor::new(data.clone())), "test", None);
        let tail = reader.finish(Instant::now() + Duration::from_secs(10));
        assert_eq!(tail.as_bytes(), &data[data.len() - TAIL_BYTES..]);
    }

    #[test]
    fn no_source_is_empty() {
        let reader = TailReader::spawn(None::<std::io::Empty>, "test", None);
        assert_eq!(reader.finish(Instant::now()), "");
    }
}
