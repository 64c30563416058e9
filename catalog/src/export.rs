//! `servers export`: servers written as the CSV `servers import` reads —
//! the import's headers, one row per server, quoted by the `csv` crate
//! where a field needs it — so an export imports again as it was.

use vigie_wire::catalog::ServerSpec;
use vigie_wire::tower::Labels;

use crate::servers::{OPTIONAL, REQUIRED};

/// Labels as the import's `labels` column spells them (`k=v;k=v`).
pub fn labels_text(labels: &Labels) -> String {
    let v: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.join(";")
}

/// The header line, then nothing: rows follow with [`rows`].
pub fn header() -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let cols: Vec<&str> = REQUIRED.iter().chain(OPTIONAL.iter()).copied().collect();
    // Writing to a Vec cannot fail.
    let _ = w.write_record(&cols);
    text(w)
}

/// The CSV rows of `servers`, in the header's column order.
pub fn rows<'a>(servers: impl IntoIterator<Item = &'a ServerSpec>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    for s in servers {
        let row = [
            s.name.clone(),
            s.address.to_string(),
            s.ssh_port.to_string(),
            s.ssh_user.clone(),
            s.provider.clone(),
            s.cpu.to_string(),
            s.ram_gb.to_string(),
            s.disk_gb.to_string(),
            labels_text(&s.labels),
            s.host_key.clone().unwrap_or_default(),
        ];
        let _ = w.write_record(&row);
    }
    text(w)
}

fn text(w: csv::Writer<Vec<u8>>) -> String {
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_reads_back_as_the_same_servers() {
        let head = "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels,host_key\n";
        let text = format!(
            "{head}web-1,10.0.0.1,22,debian,\"ovh, gra\",4,8,80,role=web;env=prod,ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKbOZWTxC1Jv1TOGb0EtvCql8xFA2bKc/05y4R2CBTP+\n\
             db-1,2001:db8::1,2222,admin,\"a \"\"quoted\"\" one\",8,32,500,,\n"
        );
        let read = crate::servers::parse_servers("a.csv", text.as_bytes(), |_| {}).unwrap();
        let specs: Vec<ServerSpec> = read.into_iter().map(|r| r.server).collect();
        let out = format!("{}{}", header(), rows(&specs));
        let again = crate::servers::parse_servers("b.csv", out.as_bytes(), |_| {}).unwrap();
        let again: Vec<ServerSpec> = again.into_iter().map(|r| r.server).collect();
        assert_eq!(again, specs, "{out}");
    }
}
