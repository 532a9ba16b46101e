//! An archive written on a blocking thread and read as a stream of chunks (an HTTP response
//! body), with back-pressure: the writer waits while the reader is behind.

use std::io::{self, Write};

use futures_util::Stream;
use tokio::sync::mpsc;

/// Size of the chunks handed to the reader.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight before the writer waits.
const DEPTH: usize = 8;

/// The writing end: use it from a blocking thread only.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

/// A writer and the stream of what is written to it. The stream ends when the writer is
/// dropped after [`ChannelWriter::finish`]; a writer dropped without it, or
/// [`ChannelWriter::fail`], ends the stream with an error, so a reader never mistakes half an
/// archive for a whole one.
pub fn channel() -> (ChannelWriter, impl Stream<Item = io::Result<Vec<u8>>>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        stream,
    )
}

impl ChannelWriter {
    fn send(&mut self, item: io::Result<Vec<u8>>) -> io::Result<()> {
        self.tx
            .blocking_send(item)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader went away"))
    }

    /// Sends what is buffered and ends the stream normally.
    pub fn finish(mut self) -> io::Result<()> {
        self.flush()?;
        self.buf = Vec::new();
        // Mark success: the drop below sends nothing more.
        self.tx = mpsc::channel(1).0;
        Ok(())
    }

    /// Ends the stream with `error`.
    pub fn fail(mut self, error: impl std::fmt::Display) {
        let _ = self.send(Err(io::Error::other(error.to_string())));
        self.tx = mpsc::channel(1).0;
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.send(Ok(chunk))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = std::mem::take(&mut self.buf);
            self.send(Ok(chunk))?;
        }
        Ok(())
    }
}

impl Drop for ChannelWriter {
    /// Dropped without `finish` (a panic, an early return): the reader must not take what it
    /// got for the whole archive.
    fn drop(&mut self) {
        if !self.tx.is_closed() {
            let _ = self
                .tx
                .try_send(Err(io::Error::other("the archive was not finished")));
        }
    }
}
