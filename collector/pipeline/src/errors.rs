//! Error text for logs and health: an error with the sources that add something.

/// `first`, then each source of `e` whose text `first` (and the sources before) does not already
/// hold: most errors name their cause in their own message, and tonic's `Unavailable: dns error`
/// hides the host in its sources.
pub fn with_sources(first: String, e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = first;
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

/// An error and its sources, `a: b: c`, each said once.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    with_sources(e.to_string(), e)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:1: {0}")]
    struct Bind(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("receivers.otlp")]
    struct Receiver(#[source] Bind);

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "address in use");
        let e = Receiver(Bind(io));
        assert_eq!(
            super::error_chain(&e),
            "receivers.otlp: cannot listen on 127.0.0.1:1: address in use"
        );
    }
}
