//! A host's log records read back for the tower from files as found on
//! disk: a record torn by a crash or a full disk (the next one appended
//! after it) holds bytes that are not UTF-8, shown with replacement
//! characters. Found by the `log_records` fuzz target.

use vigie_plug::LogStore;
use vigie_wire::observe::{LogSource, LogsQuery};

fn query(cursor: Option<vigie_wire::observe::LogCursor>, max_bytes: u32) -> LogsQuery {
    LogsQuery {
        host: "web-1".into(),
        source: LogSource::Steps { change: None },
        since_ms: None,
        cursor,
        max_bytes,
    }
}

#[test]
fn a_page_never_holds_more_than_asked_even_past_a_torn_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LogStore::open(dir.path()).expect("store");
    // A whole record, then one torn inside "é" and followed by the next
    // record: 11 bytes on disk, 21 once each stray byte is shown as U+FFFD.
    let mut file = b"1\tc1\tok\n".to_vec();
    file.extend_from_slice(b"2\tc1\t\xc3\xc3\xc3\xc3\xc3\n");
    file.extend_from_slice(b"3\tc1\tlast\n");
    std::fs::write(dir.path().join("steps.000000000001.log"), &file).expect("write");

    // Paging through with 24 bytes a page: the referee refuses an answer
    // holding more than asked, so none may; every line comes, in order.
    let mut text = String::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = store.read(&query(cursor, 24)).expect("read");
        assert!(
            page.text.len() <= 24,
            "{} bytes answered, 24 asked: {:?}",
            page.text.len(),
            page.text
        );
        text.push_str(&page.text);
        cursor = Some(page.cursor);
        if !page.more {
            break;
        }
    }
    assert_eq!(
        text,
        "1\tc1\tok\n2\tc1\t\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\n3\tc1\tlast\n"
    );
}
