//! Reaching the cluster: the metadata request every command that talks to Kafka makes first
//! (`run`'s start-up check, `topics ensure`, `tail`, `produce`, and `replay`/`kpi --bootstrap`
//! through `tail`), told apart by why it fails.
//!
//! A cluster that refuses the client's credentials (SASL authentication) or its TLS client
//! certificate (a listener requiring one: mutual TLS), or whose TLS handshake fails (a broker
//! certificate not trusted, a TLS client at a plaintext listener), answers no request, so
//! librdkafka reports it only as an error event and every request times out as a transport
//! failure. Before, that reached the user after the whole wait as "is
//! KAFKA_BOOTSTRAP right and the cluster up?" (`run`, 30 s), `OperationTimedOut` (`topics
//! ensure`, 60 s), a metadata fetch error (`tail`, 10 s), or never (`produce` logged the refusal
//! and waited for each record's delivery timeout). Here the request is made in short tries,
//! serving the client's events between them: a refusal or a failed handshake ends the wait at
//! once, named as such, with the settings to check; a cluster that does not answer still gets
//! the whole wait. A client without TLS or SASL whose first try is not answered asks the
//! listener itself once ([`listener_wants`]): one that speaks TLS, or wants SASL, ends the wait
//! at once, named as such, with the protocol to set (the broker only drops such a client's
//! requests, which librdkafka cannot tell from a cluster not up yet). When the whole wait ends,
//! a TCP connection to each bootstrap address tells "nothing listens there" (check the address)
//! from "something accepts connections but answered no Kafka request" (check the security
//! protocol).
//!
//! Once the processor runs, the same refusals (credentials revoked, a broker certificate rotated
//! to one the CA did not sign) stop it when a fresh connection confirms them ([`Refusals`]),
//! instead of its retrying for ever.
//!
//! An operation the cluster refuses this principal (an ACL: `*_AUTHORIZATION_FAILED`) cannot
//! succeed on a retry either: [`access_denied`] tells such errors apart wherever they arrive (the
//! group consumer, the transactional producer), and [`access_hint`] says which ACLs the
//! processor needs. Before, a missing group ACL left the processor polling, assigned nothing,
//! for ever, and a missing WRITE on an output topic aborted and recreated the producer for
//! every batch, for ever (by hand: 15 times in 100 s, no event folded).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use thiserror::Error;

use crate::config::Config;

/// Where the client's security settings are set (named in [`ReachError::Refused`]).
pub const SECURITY_SETTINGS: &str = "HIRESTATE_KAFKA_SECURITY_PROTOCOL, \
    HIRESTATE_KAFKA_SASL_MECHANISMS, HIRESTATE_KAFKA_SASL_USERNAME, \
    HIRESTATE_KAFKA_SASL_PASSWORD and the HIRESTATE_KAFKA_SSL_* settings (or the [kafka] table \
    of the file)";

/// How long one metadata request waits before the client's events are served and it is made
/// again.
const TRY: Duration = Duration::from_millis(500);

/// Why the cluster could not be read.
#[derive(Debug, Error)]
pub enum ReachError {
    #[error(
        "the Kafka cluster at {bootstrap:?} refused hirestate's credentials: {reason}; check \
         the security settings: {SECURITY_SETTINGS}"
    )]
    Refused { bootstrap: String, reason: String },
    #[error(
        "the TLS handshake with the Kafka cluster at {bootstrap:?} failed: {reason}; check \
         HIRESTATE_KAFKA_SECURITY_PROTOCOL (now {protocol:?}; SSL and SASL_SSL speak TLS, which \
         only a TLS listener answers) and HIRESTATE_KAFKA_SSL_CA_LOCATION (the CA certificate, \
         PEM, that signed the brokers' certificates), among the HIRESTATE_KAFKA_SSL_* settings \
         (or the [kafka] table of the file)"
    )]
    Handshake {
        bootstrap: String,
        protocol: String,
        reason: String,
    },
    #[error(
        "the Kafka cluster at {bootstrap:?} refused hirestate's TLS client certificate: \
         {reason}; {sent}. A listener that requires client certificates (mutual TLS) takes one \
         signed by a CA it trusts: set HIRESTATE_KAFKA_SSL_CERTIFICATE_LOCATION and \
         HIRESTATE_KAFKA_SSL_KEY_LOCATION (PEM files), or HIRESTATE_KAFKA_SSL_KEYSTORE_LOCATION \
         and HIRESTATE_KAFKA_SSL_KEYSTORE_PASSWORD (PKCS#12), among the HIRESTATE_KAFKA_SSL_* \
         settings (or the [kafka] table of the file)"
    )]
    ClientCertificate {
        bootstrap: String,
        reason: String,
        /// Which client certificate was configured ([`client_certificate`]).
        sent: String,
    },
    #[error(
        "the Kafka listener at {address} speaks TLS (it answered a plaintext request with a TLS \
         alert), but HIRESTATE_KAFKA_SECURITY_PROTOCOL is {protocol:?}: set it to {over_tls}, \
         with HIRESTATE_KAFKA_SSL_CA_LOCATION (the CA certificate, PEM) unless a CA the system \
         trusts signed the brokers' certificates"
    )]
    SpeaksTls {
        /// The bootstrap address that answered so.
        address: String,
        protocol: String,
        /// The protocol to set: SSL, or SASL_SSL for SASL.
        over_tls: &'static str,
    },
    #[error(
        "the Kafka listener at {address} requires SASL authentication (it closed the \
         connection at a request sent without it), but HIRESTATE_KAFKA_SECURITY_PROTOCOL is \
         {protocol:?}: set it to SASL_PLAINTEXT, with HIRESTATE_KAFKA_SASL_MECHANISMS (e.g. \
         PLAIN, SCRAM-SHA-256), HIRESTATE_KAFKA_SASL_USERNAME and HIRESTATE_KAFKA_SASL_PASSWORD"
    )]
    RequiresSasl {
        /// The bootstrap address that answered so.
        address: String,
        protocol: String,
    },
    #[error(
        "cannot read topic metadata from the Kafka cluster at {bootstrap:?} within {ms} ms: \
         {error}; {heard}"
    )]
    Unanswered {
        bootstrap: String,
        ms: u128,
        /// The last request's error, as librdkafka words it.
        error: String,
        /// What a TCP connection to the bootstrap addresses found ([`heard`]).
        heard: String,
    },
    /// A shutdown was asked for (SIGTERM, SIGINT) before the cluster answered.
    #[error(
        "shutdown requested while waiting for the Kafka cluster at {bootstrap:?}: nothing was \
         started"
    )]
    Stopped { bootstrap: String },
    /// The client could not be created from the configuration.
    #[error(transparent)]
    Kafka(#[from] KafkaError),
}

/// Why the cluster cannot be talked to with these settings: retrying with them cannot succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// The cluster refused the SASL credentials.
    Credentials(String),
    /// The TLS handshake failed: the broker's certificate was not trusted, or the listener does
    /// not speak TLS.
    Handshake(String),
    /// The broker refused the client certificate sent, or that none was sent, with a TLS alert.
    ClientCertificate(String),
}

/// A client context that keeps the first [`Refusal`] librdkafka reports, and logs every other
/// error as librdkafka's default context does.
#[derive(Debug, Default)]
struct CredentialsWatch {
    refused: Mutex<Option<Refusal>>,
}

impl CredentialsWatch {
    fn refused(&self) -> Option<Refusal> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn keep(&self, refusal: Refusal) {
        let mut refused = self
            .refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        refused.get_or_insert(refusal);
    }
}

impl ClientContext for CredentialsWatch {
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(refusal) = refusal(&error, reason) {
            self.keep(refusal);
        } else {
            tracing::error!("librdkafka: {error}: {reason}");
        }
    }

    /// A failed handshake is not always also an error event (seen: a TLS client at a plaintext
    /// listener, none in 6 s of tries), but each try logs it (`FAIL`).
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if fac == "FAIL" {
            // "[thrd:ssl://host:port/bootstrap]: ssl://host:port/bootstrap: SSL handshake …"
            let reason = log_message
                .strip_prefix("[thrd:")
                .and_then(|rest| rest.split_once("]: "))
                .map_or(log_message, |(_, reason)| reason);
            if let Some(refusal) = tls_refusal(reason) {
                self.keep(refusal);
            }
        }
        DefaultClientContext.log(level, fac, log_message);
    }
}

impl ConsumerContext for CredentialsWatch {}

/// The refusal `e` (with librdkafka's `reason`) is, if it is one. A TLS client at a plaintext
/// listener is reported as a transport failure during the handshake, not as an `SSL` error:
/// "SSL handshake failed: Disconnected: SSL connection closed by peer: connecting to a
/// PLAINTEXT broker listener? (after 1ms in state SSL_HANDSHAKE)", or, as often, without the
/// first words and the question. (A TLS broker going down during a handshake would read the
/// same: the start-up checks stop on it, but a running processor does not count it,
/// [`definitive`].)
fn refusal(e: &KafkaError, reason: &str) -> Option<Refusal> {
    match e.rdkafka_error_code()? {
        RDKafkaErrorCode::Authentication => Some(Refusal::Credentials(reason.to_owned())),
        RDKafkaErrorCode::SSL => {
            tls_refusal(reason).or_else(|| Some(Refusal::Handshake(reason.to_owned())))
        }
        RDKafkaErrorCode::BrokerTransportFailure => tls_refusal(reason),
        _ => None,
    }
}

/// The TLS refusal librdkafka's `reason` for a connection failure says, if it says one: a TLS
/// alert the broker sent about the client's certificate, or a failure in the TLS handshake.
///
/// In TLS 1.3 a client finishes its side of the handshake before the broker checks the client
/// certificate, so a listener requiring one (mutual TLS) refuses it with an alert that arrives
/// on the next read: "Receive failed: error:0A000412:SSL routines::sslv3 alert bad
/// certificate: SSL alert number 42 (after 1ms in state APIVERSION_QUERY)" (the test broker,
/// sent no certificate or one it does not trust). The alerts about a certificate (RFC 8446
/// 6.2) are bad_certificate 42, unsupported_certificate 43, certificate_revoked 44,
/// certificate_expired 45, certificate_unknown 46, unknown_ca 48 and certificate_required 116;
/// any other alert the broker sends ends the handshake too.
fn tls_refusal(reason: &str) -> Option<Refusal> {
    let alert = reason
        .split_once("SSL alert number ")
        .and_then(|(_, rest)| {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..digits].parse::<u16>().ok()
        });
    match alert {
        Some(42..=46 | 48 | 116) => Some(Refusal::ClientCertificate(reason.to_owned())),
        Some(_) => Some(Refusal::Handshake(reason.to_owned())),
        None if reason.contains("SSL handshake failed")
            || reason.contains("in state SSL_HANDSHAKE") =>
        {
            Some(Refusal::Handshake(reason.to_owned()))
        }
        None => None,
    }
}

/// Which client certificate the client `config` builds presents, said for
/// [`ReachError::ClientCertificate`].
fn client_certificate(config: &rdkafka::ClientConfig) -> String {
    let configured = [
        "ssl.certificate.location",
        "ssl.keystore.location",
        "ssl.certificate.pem",
    ]
    .into_iter()
    .find_map(|key| config.get(key).map(|value| (key, value)));
    match configured {
        None => "no client certificate is configured".to_owned(),
        // An inline PEM is a certificate, not a secret, but it is long: named, not quoted.
        Some(("ssl.certificate.pem", _)) => {
            "the one configured (ssl.certificate.pem) is not one the cluster accepts (not \
             signed by a CA it trusts, expired or revoked)"
                .to_owned()
        }
        Some((key, value)) => format!(
            "the one configured ({key} = {value:?}) is not one the cluster accepts (not signed \
             by a CA it trusts, expired or revoked)"
        ),
    }
}

/// What a listener wants that a plaintext client does not give it ([`listener_wants`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wants {
    /// TLS: it answered a plaintext request with a TLS alert record.
    Tls,
    /// SASL: it answered ApiVersions (allowed before authenticating), then closed the
    /// connection at a metadata request sent without authenticating.
    Sasl,
}

/// A Kafka request of `api_key` at `version` (correlation id 1, client id "hirestate") with
/// `body`, size first.
fn request(api_key: u8, version: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![0, api_key, 0, version, 0, 0, 0, 1, 0, 9];
    r.extend_from_slice(b"hirestate");
    r.extend_from_slice(body);
    let mut sized = u32::try_from(r.len()).unwrap_or(0).to_be_bytes().to_vec();
    sized.extend(r);
    sized
}

/// The first address of `bootstrap` whose listener wants TLS, or SASL when `sasl` is asked
/// about too, with which, found by asking it directly: a plaintext client's own requests there
/// are only dropped, which librdkafka cannot tell from a broker that is not up yet. A
/// plaintext or SASL listener answers ApiVersions (v0), a TLS one a TLS alert record (content
/// type 21, version 3.x); then a plaintext listener answers a metadata request
/// ([`METADATA_V4`]) and a SASL one closes the connection.
fn listener_wants(bootstrap: &str, sasl: bool) -> Option<(String, Wants)> {
    bootstrap.split(',').map(str::trim).find_map(|address| {
        let mut stream = connect(address)?;
        stream.set_read_timeout(Some(PROBE_WAIT)).ok()?;
        stream.set_write_timeout(Some(PROBE_WAIT)).ok()?;
        stream.write_all(&request(18, 0, &[])).ok()?;
        let mut head = [0u8; 4];
        stream.read_exact(&mut head).ok()?;
        if head[..2] == [21, 3] {
            return Some((address.to_owned(), Wants::Tls));
        }
        if !sasl {
            return None;
        }
        // The ApiVersions answer's body (a few hundred bytes; bounded all the same).
        let size = u64::from(u32::from_be_bytes(head)).min(1 << 20);
        std::io::copy(&mut (&mut stream).take(size), &mut std::io::sink()).ok()?;
        stream.write_all(&request(3, 4, METADATA_V4)).ok()?;
        match stream.read(&mut head) {
            Ok(0) => Some((address.to_owned(), Wants::Sasl)),
            _ => None,
        }
    })
}

/// A metadata request's body at version 4 (Kafka 1.0 and later, 4.1 too): every topic (a null
/// array), none created.
const METADATA_V4: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0];

/// How long [`connect`] waits for a connection, and [`listener_wants`] for each answer.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// A TCP connection to `address` (`host:port`), to the first of the addresses it resolves to
/// that accepts one ("localhost" may resolve to `::1` before `127.0.0.1`).
fn connect(address: &str) -> Option<TcpStream> {
    address
        .to_socket_addrs()
        .ok()?
        .find_map(|a| TcpStream::connect_timeout(&a, PROBE_WAIT).ok())
}

/// What a TCP connection to each address of `bootstrap` finds, said as what to check: nothing
/// listening (the address), or something listening that answered no Kafka request over
/// `protocol` (the security protocol; or it is not a Kafka broker).
fn heard(bootstrap: &str, protocol: &str) -> String {
    let listening = bootstrap
        .split(',')
        .map(str::trim)
        .find(|address| connect(address).is_some());
    match listening {
        Some(address) => format!(
            "{address} accepts connections but answered no Kafka request: does \
             HIRESTATE_KAFKA_SECURITY_PROTOCOL (now {protocol:?}) match the listener at that port \
             (SSL or SASL_SSL for a TLS one, SASL_PLAINTEXT or SASL_SSL for a SASL one), and is \
             it a Kafka broker?"
        ),
        None => format!(
            "nothing accepted a connection at {bootstrap:?}: is KAFKA_BOOTSTRAP right and the \
             cluster up?"
        ),
    }
}

/// How long the fresh connection that confirms a refusal ([`Refusals::confirmed`]) may wait
/// for the cluster.
const CONFIRM_WAIT: Duration = Duration::from_secs(10);

/// The running processor's watch on the cluster refusing it (the group consumer's and the
/// transactional producer's client contexts report to it): when the cluster has refused its
/// credentials, its TLS client certificate, or a TLS handshake with a certificate error, and a
/// fresh connection made once that is as old as the processor's wait on the cluster is refused
/// too, it stops, as for a missing ACL ([`access_refusal`]), instead of retrying for ever.
///
/// A cluster refuses credentials that were revoked or rotated (a SCRAM user deleted, an API key
/// deleted) on the next authentication of a connection: a new one, or an open one when the
/// listener makes sessions re-authenticate (`connections.max.reauth.ms`, KIP-368). librdkafka
/// then reports `Authentication` and keeps trying; the processor folded nothing and logged
/// "AllBrokersDown" every 10 s, for ever. Likewise a broker certificate rotated to one the
/// configured CA did not sign (librdkafka's `SSL` error, "certificate verify failed"), or a
/// client certificate the broker stops accepting (a TLS alert, [`tls_refusal`]). A disconnect
/// during a handshake is not counted: a broker restarting does that.
///
/// librdkafka reports an error identical to a broker connection's previous one at most every
/// 30 s, so how often refusals arrive says nothing of whether they go on. Instead, the first
/// refusal since the cluster last took the client opens a spell; once the spell is as old as
/// the wait, one fresh connection ([`Reader`]) decides: refused again (not merely dropped),
/// the processor stops; answered, the spell ends (the refusal was passing: an authentication
/// backend that failed once, a Kerberos ticket renewed in time); not answered (an outage),
/// the spell starts over. A batch committed ends the spell too.
#[derive(Debug, Default)]
pub struct Refusals {
    /// The current spell: when it began, and its latest refusal.
    spell: Mutex<Option<(Instant, Refusal)>>,
}

impl Refusals {
    /// What a client context's `error` does: logs librdkafka's error as its default context
    /// does, and notes it if it is a refusal of the client ([`Refusals::note`]).
    pub fn error(&self, error: &KafkaError, reason: &str) {
        self.note(error, reason);
        tracing::error!("librdkafka: {error}: {reason}");
    }

    /// Notes `error` (with librdkafka's `reason`) if it is a refusal of the client, and says
    /// whether it was.
    fn note(&self, error: &KafkaError, reason: &str) -> bool {
        let Some(refusal) = refusal(error, reason).filter(definitive) else {
            return false;
        };
        self.note_at(Instant::now(), refusal);
        true
    }

    fn note_at(&self, now: Instant, refusal: Refusal) {
        let mut spell = self.lock();
        let began = spell.as_ref().map_or(now, |(began, _)| *began);
        *spell = Some((began, refusal));
    }

    /// The spell's latest refusal, when the spell is at least `wait` old at `now`.
    fn due_at(&self, now: Instant, wait: Duration) -> Option<Refusal> {
        let spell = self.lock();
        let (began, refusal) = spell.as_ref()?;
        (now.duration_since(*began) >= wait).then(|| refusal.clone())
    }

    /// What the processor stops with, when a spell of refusals is `wait` old and a fresh
    /// connection to the cluster `config` names is refused too (see the type's doc); ends or
    /// restarts the spell otherwise. Returns at once while no spell is due; a due one waits
    /// for the fresh connection (up to 10 s, or until `stop` is set).
    pub fn confirmed(
        &self,
        config: &Config,
        wait: Duration,
        stop: &Arc<AtomicBool>,
    ) -> Option<String> {
        let noted = self.due_at(Instant::now(), wait)?;
        let fresh = Reader::new(config, CONFIRM_WAIT)
            .map(|r| r.stopping_on(Some(stop.clone())))
            .map_err(ReachError::from)
            .and_then(|r| match r.metadata(None) {
                Ok(_) => Ok(None),
                // The refusal the fresh connection met, as its context kept it.
                Err(e) => r
                    .consumer
                    .context()
                    .refused()
                    .filter(definitive)
                    .map(Some)
                    .ok_or(e),
            });
        match fresh {
            Ok(None) => {
                tracing::info!(refused = ?noted, "the Kafka cluster takes hirestate's client again");
                self.clear();
                None
            }
            Ok(Some(refusal)) => Some(refused_while_running(&config.bootstrap, wait, &refusal)),
            Err(e) => {
                tracing::warn!(refused = ?noted, now = %e, "the Kafka cluster refused hirestate's client, and does not answer now: waiting again");
                *self.lock() = Some((Instant::now(), noted));
                None
            }
        }
    }

    /// While a spell is open, what `/readyz` answers: how long the cluster has refused the
    /// client and its latest refusal.
    pub fn unready(&self) -> Option<String> {
        self.unready_at(Instant::now())
    }

    fn unready_at(&self, now: Instant) -> Option<String> {
        let spell = self.lock();
        let (began, refusal) = spell.as_ref()?;
        let (what, reason) = match refusal {
            Refusal::Credentials(r) => ("refuses hirestate's credentials", r),
            Refusal::ClientCertificate(r) => ("refuses hirestate's TLS client certificate", r),
            Refusal::Handshake(r) => ("fails hirestate's TLS handshakes", r),
        };
        Some(format!(
            "the Kafka cluster {what} (for {} s; the processor stops once a fresh connection \
             is refused too): {reason}",
            now.duration_since(*began).as_secs()
        ))
    }

    /// Ends the spell: the cluster took the client since (a batch committed).
    pub fn clear(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Refusal)>> {
        self.spell
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether `refusal` is the cluster's last word rather than a connection merely dropped: a
/// refused authentication or client certificate, or a handshake failed on an OpenSSL error (a
/// certificate not verified, an alert). A disconnect during a handshake, which a broker
/// restarting causes too, is not.
fn definitive(refusal: &Refusal) -> bool {
    match refusal {
        Refusal::Credentials(_) | Refusal::ClientCertificate(_) => true,
        Refusal::Handshake(reason) => reason.contains("SSL routines"),
    }
}

/// What the processor stops with when the cluster at `bootstrap` has refused it for `wait`
/// ([`Refusals::confirmed`]), the fresh connection with `refusal`.
fn refused_while_running(bootstrap: &str, wait: Duration, refusal: &Refusal) -> String {
    let (what, reason, until, check) = match refusal {
        Refusal::Credentials(reason) => (
            format!("the Kafka cluster at {bootstrap:?} refused hirestate's credentials"),
            reason,
            "they are restored",
            format!("the security settings: {SECURITY_SETTINGS}"),
        ),
        Refusal::ClientCertificate(reason) => (
            format!(
                "the Kafka cluster at {bootstrap:?} refused hirestate's TLS client certificate"
            ),
            reason,
            "it takes the certificate again or another is configured",
            "HIRESTATE_KAFKA_SSL_CERTIFICATE_LOCATION and HIRESTATE_KAFKA_SSL_KEY_LOCATION, or \
             HIRESTATE_KAFKA_SSL_KEYSTORE_LOCATION (the client certificate), among the \
             HIRESTATE_KAFKA_SSL_* settings"
                .to_owned(),
        ),
        Refusal::Handshake(reason) => (
            format!("the TLS handshakes with the Kafka cluster at {bootstrap:?} failed"),
            reason,
            "the brokers' certificates or the settings change",
            "HIRESTATE_KAFKA_SSL_CA_LOCATION (the CA certificate, PEM, that signed the brokers' \
             certificates), among the HIRESTATE_KAFKA_SSL_* settings"
                .to_owned(),
        ),
    };
    format!(
        "{what} while hirestate ran, and again on a fresh connection {} s later: {reason}; \
         retrying cannot succeed until {until}, so hirestate stops (nothing committed is lost: \
         the next start resumes from the last commit). Check {check}",
        wait.as_secs()
    )
}

/// The error code of `e` when it is the cluster refusing this principal an operation (an ACL).
pub fn access_denied(e: &KafkaError) -> Option<RDKafkaErrorCode> {
    let code = match e {
        KafkaError::Transaction(te) => te.code(),
        other => other.rdkafka_error_code()?,
    };
    matches!(
        code,
        RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
    )
    .then_some(code)
}

/// What the processor stops with when the cluster refused it an operation with `code`
/// ([`access_denied`]): which ACLs it needs, named for this configuration.
pub fn access_hint(config: &Config, code: RDKafkaErrorCode) -> String {
    let topics = crate::topics::Topics::new(&config.topic_prefix);
    let written = if config.topic_prefix.is_empty() {
        "every topic `hirestate topics ensure` lists".to_owned()
    } else {
        format!(
            "every topic hirestate writes (a PREFIXED ACL on {:?} covers them all)",
            format!("{}.", config.topic_prefix)
        )
    };
    let needs = match code {
        RDKafkaErrorCode::GroupAuthorizationFailed => format!(
            "READ and DESCRIBE on the group {:?} (HIRESTATE_GROUP_ID)",
            config.group_id
        ),
        RDKafkaErrorCode::TransactionalIdAuthorizationFailed => format!(
            "WRITE and DESCRIBE on the transactional id {:?} (`<group id>-<instance id>`; a \
             PREFIXED ACL on {:?} covers every instance of the group)",
            config.transactional_id(),
            format!("{}-", config.group_id)
        ),
        RDKafkaErrorCode::ClusterAuthorizationFailed => {
            "IDEMPOTENT_WRITE on the cluster (brokers before Kafka 2.8 ask it of transactional \
             producers)"
                .to_owned()
        }
        _ => format!(
            "READ and DESCRIBE on {} and {}, WRITE on {written} (the timers write into {} too), \
             and DESCRIBE_CONFIGS on {}",
            topics.events, topics.snapshots, topics.events, topics.snapshots
        ),
    };
    format!(
        "the Kafka cluster at {:?} refused this principal an operation ({code}); retrying \
         cannot succeed until its ACLs change, so hirestate stops. The processor needs {needs} \
         (README \"Access rights\" lists them all)",
        config.bootstrap
    )
}

/// What the processor stops with when `e` is the cluster refusing it an operation
/// ([`access_denied`]): what to grant, then the error.
pub fn access_refusal(config: &Config, e: &KafkaError) -> Option<String> {
    access_denied(e).map(|code| format!("{}: {e}", access_hint(config, code)))
}

/// A metadata reader of the cluster `config` names, whose requests all end by one deadline.
pub struct Reader {
    bootstrap: String,
    /// `security.protocol` as configured (librdkafka's default: `plaintext`).
    protocol: String,
    /// The client certificate configured ([`client_certificate`]).
    certificate: String,
    consumer: BaseConsumer<CredentialsWatch>,
    timeout: Duration,
    deadline: Instant,
    /// Set when a shutdown is asked for: the wait ends at the next try.
    stop: Option<Arc<AtomicBool>>,
}

impl Reader {
    /// A reader whose requests end `timeout` from now.
    ///
    /// # Errors
    /// When the client cannot be created from the configuration.
    pub fn new(config: &Config, timeout: Duration) -> Result<Reader, KafkaError> {
        let client = config.consumer_config();
        // As this client has it: a consumer-only setting counts too.
        let protocol = client.get("security.protocol").unwrap_or("plaintext");
        Ok(Reader {
            bootstrap: config.bootstrap.clone(),
            protocol: protocol.to_owned(),
            certificate: client_certificate(&client),
            consumer: client.create_with_context(CredentialsWatch::default())?,
            timeout,
            deadline: Instant::now() + timeout,
            stop: None,
        })
    }

    /// This reader, its wait ended ([`ReachError::Stopped`]) once `stop` is set.
    #[must_use]
    pub fn stopping_on(mut self, stop: Option<Arc<AtomicBool>>) -> Reader {
        self.stop = stop;
        self
    }

    /// Whether the reader's deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// The cluster's metadata of `topic` (of every topic: `None`), asked until the deadline.
    ///
    /// # Errors
    /// [`ReachError::Refused`] as soon as the cluster refuses the credentials,
    /// [`ReachError::Handshake`] as soon as a TLS handshake fails,
    /// [`ReachError::ClientCertificate`] as soon as the cluster refuses the client certificate,
    /// [`ReachError::SpeaksTls`] or [`ReachError::RequiresSasl`] after the first unanswered try
    /// of a client without TLS or SASL whose listener wants it ([`listener_wants`]);
    /// [`ReachError::Unanswered`], with the request's last error and what a TCP connection
    /// found, when the deadline passes first; [`ReachError::Stopped`] when a shutdown is asked
    /// for first ([`Reader::stopping_on`]).
    pub fn metadata(&self, topic: Option<&str>) -> Result<Metadata, ReachError> {
        // A client without TLS asks once, after its first unanswered try, whether the listener
        // wants TLS, and one without SASL whether it wants SASL (a cluster that answers is
        // never asked): the TLS protocol to suggest, and whether to ask about SASL.
        let mut probe = match self.protocol.to_ascii_lowercase().as_str() {
            "plaintext" => Some(("SSL (or SASL_SSL, if the listener wants SASL too)", true)),
            "sasl_plaintext" => Some(("SASL_SSL", false)),
            _ => None,
        };
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            let failed = match self.consumer.fetch_metadata(topic, left.min(TRY)) {
                Ok(md) => return Ok(md),
                Err(e) => e,
            };
            // Serves the client's error events: a refusal arrives as one.
            let _ = self.consumer.poll(Duration::ZERO);
            let bootstrap = self.bootstrap.clone();
            match self.consumer.context().refused() {
                Some(Refusal::Credentials(reason)) => {
                    return Err(ReachError::Refused { bootstrap, reason })
                }
                Some(Refusal::Handshake(reason)) => {
                    return Err(ReachError::Handshake {
                        bootstrap,
                        protocol: self.protocol.clone(),
                        reason,
                    })
                }
                Some(Refusal::ClientCertificate(reason)) => {
                    return Err(ReachError::ClientCertificate {
                        bootstrap,
                        reason,
                        sent: self.certificate.clone(),
                    })
                }
                None if self
                    .stop
                    .as_ref()
                    .is_some_and(|s| s.load(Ordering::Relaxed)) =>
                {
                    return Err(ReachError::Stopped { bootstrap })
                }
                None if probe.is_some() => {
                    let (over_tls, sasl) = probe.take().unwrap_or_default();
                    let protocol = self.protocol.clone();
                    match listener_wants(&bootstrap, sasl) {
                        Some((address, Wants::Tls)) => {
                            return Err(ReachError::SpeaksTls {
                                address,
                                protocol,
                                over_tls,
                            })
                        }
                        Some((address, Wants::Sasl)) => {
                            return Err(ReachError::RequiresSasl { address, protocol })
                        }
                        None => {}
                    }
                }
                None if self.expired() => {
                    return Err(ReachError::Unanswered {
                        heard: heard(&bootstrap, &self.protocol),
                        bootstrap,
                        ms: self.timeout.as_millis(),
                        error: failed.to_string(),
                    })
                }
                None => {}
            }
        }
    }

    /// The cluster's id, as the metadata already read carried it.
    pub fn cluster_id(&self, timeout: Duration) -> Option<String> {
        self.consumer.client().fetch_cluster_id(timeout)
    }
}

/// The cluster's metadata of `topic` (which may not exist: the metadata then says so), read
/// within `timeout`: what a tool reads first.
///
/// # Errors
/// As [`Reader::metadata`].
pub fn metadata(config: &Config, topic: &str, timeout: Duration) -> Result<Metadata, ReachError> {
    Reader::new(config, timeout)?.metadata(Some(topic))
}

/// The broker's error `e` for `topic` in a metadata answer, as a tool reports it. A topic this
/// principal may not describe is named as refused: the cluster then says nothing of whether it
/// exists (before, the tools said it did not); a missing one with what to do
/// ([`Topics::missing`](super::Topics::missing)).
pub fn topic_error(config: &Config, topic: &str, e: RDKafkaRespErr) -> anyhow::Error {
    match e {
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED => anyhow::anyhow!(
            "topic {topic}: the cluster refused this principal DESCRIBE on it (so it says \
             nothing of whether the topic exists); reading it needs READ and DESCRIBE (README \
             \"Access rights\")"
        ),
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART => {
            anyhow::anyhow!(super::Topics::new(&config.topic_prefix).missing(topic))
        }
        e => anyhow::anyhow!("topic {topic}: {}", RDKafkaErrorCode::from(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn heard_tells_a_listening_address_from_one_where_nothing_listens() {
        let open = TcpListener::bind("127.0.0.1:0").expect("a listener");
        let listening = open.local_addr().expect("its address").to_string();
        let closed = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a port just freed")
            .to_string();

        let both = heard(&format!("{closed}, {listening}"), "SSL");
        assert!(
            both.starts_with(&format!("{listening} accepts connections"))
                && both.contains("HIRESTATE_KAFKA_SECURITY_PROTOCOL (now \"SSL\")"),
            "{both}"
        );
        let none = heard(&closed, "plaintext");
        assert!(
            none.starts_with("nothing accepted a connection")
                && none.contains(&closed)
                && none.contains("is KAFKA_BOOTSTRAP right"),
            "{none}"
        );
    }

    /// A listener on a free loopback port that answers the probe's ApiVersions request with
    /// `first`; then, when `second` is given, its metadata request with that (`Some(&[])`
    /// closes the connection).
    fn answering(first: &'static [u8], second: Option<&'static [u8]>) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut sent = [0u8; 23];
                let _ = s.read_exact(&mut sent);
                assert_eq!(sent.to_vec(), request(18, 0, &[]), "ApiVersions");
                let _ = s.write_all(first);
                if let Some(second) = second {
                    let mut sent = [0u8; 28];
                    let _ = s.read_exact(&mut sent);
                    assert_eq!(sent.to_vec(), request(3, 4, METADATA_V4), "Metadata");
                    let _ = s.write_all(second);
                }
            }
        });
        address
    }

    #[test]
    fn a_listener_wants_tls_when_it_answers_with_an_alert_and_sasl_when_it_closes_at_metadata() {
        // ApiVersions' answer: its size, then 4 bytes of body here.
        const API_VERSIONS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 1];
        // What the test broker's TLS listener answers: a fatal alert record.
        let tls = answering(&[21, 3, 3, 0, 2, 2, 80], None);
        assert_eq!(listener_wants(&tls, false), Some((tls.clone(), Wants::Tls)));
        // A SASL listener answers ApiVersions, then closes at a metadata request.
        let sasl = answering(API_VERSIONS, Some(&[]));
        assert_eq!(
            listener_wants(&sasl, true),
            Some((sasl.clone(), Wants::Sasl))
        );
        // Not asked about SASL, it is not probed further.
        let sasl = answering(API_VERSIONS, None);
        assert_eq!(listener_wants(&sasl, false), None);
        // A plaintext listener answers both.
        let plain = answering(API_VERSIONS, Some(&[0, 0, 0, 8]));
        assert_eq!(listener_wants(&plain, true), None);
        // Closed at once, or nothing listening: nothing is concluded.
        let closed = answering(&[], None);
        assert_eq!(listener_wants(&closed, true), None);
        let nothing = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .to_string();
        assert_eq!(listener_wants(&nothing, true), None);
        // By host name (each address it resolves to is tried in turn).
        let tls = answering(&[21, 3, 3, 0, 2, 2, 80], None);
        let by_name = tls.replace("127.0.0.1", "localhost");
        assert_eq!(
            listener_wants(&by_name, false),
            Some((by_name.clone(), Wants::Tls))
        );
        // The first address of a list that wants something.
        let tls_second = answering(&[21, 3, 1, 0, 2, 2, 40], None);
        let plain_first = answering(API_VERSIONS, Some(&[0, 0, 0, 8]));
        assert_eq!(
            listener_wants(&format!("{plain_first}, {tls_second}"), true),
            Some((tls_second, Wants::Tls))
        );
    }

    #[test]
    fn readiness_names_an_open_spells_age_and_latest_refusal_until_it_ends() {
        let t0 = Instant::now();
        let refusals = Refusals::default();
        assert_eq!(refusals.unready_at(t0), None);
        refusals.note_at(t0, Refusal::Credentials("SASL authentication error".into()));
        refusals.note_at(
            t0 + Duration::from_secs(3),
            Refusal::ClientCertificate("alert 42".into()),
        );
        let said = refusals
            .unready_at(t0 + Duration::from_secs(12))
            .expect("unready while the spell is open");
        assert!(
            said.contains("refuses hirestate's TLS client certificate"),
            "{said}"
        );
        assert!(said.contains("for 12 s"), "{said}");
        assert!(said.ends_with(": alert 42"), "{said}");
        refusals.clear();
        assert_eq!(refusals.unready_at(t0 + Duration::from_secs(13)), None);
    }

    #[test]
    fn a_spell_of_refusals_is_due_once_as_old_as_the_wait_until_it_ends() {
        let wait = Duration::from_secs(30);
        let s = |secs: u64| Duration::from_secs(secs);
        let refused = |at: u64| Refusal::Credentials(format!("refused at {at}"));
        let t0 = Instant::now();
        let refusals = Refusals::default();
        assert!(refusals.due_at(t0 + s(100), wait).is_none());

        // The spell begins at the first refusal, however seldom librdkafka repeats it.
        refusals.note_at(t0, refused(0));
        assert!(refusals.due_at(t0 + s(29), wait).is_none());
        assert_eq!(refusals.due_at(t0 + s(30), wait), Some(refused(0)));
        refusals.note_at(t0 + s(31), refused(31));
        assert_eq!(refusals.due_at(t0 + s(31), wait), Some(refused(31)));
        // A committed batch (or a fresh connection answered) ends it; the next refusal begins
        // another.
        refusals.clear();
        assert!(refusals.due_at(t0 + s(40), wait).is_none());
        refusals.note_at(t0 + s(50), refused(50));
        assert!(refusals.due_at(t0 + s(60), wait).is_none());
        assert!(refusals.due_at(t0 + s(80), wait).is_some());
    }

    #[test]
    fn what_a_running_processor_counts_as_refused() {
        let code = |c| KafkaError::MetadataFetch(c);
        let counted = [
            (
                RDKafkaErrorCode::Authentication,
                "SASL authentication error: Authentication failed",
            ),
            (
                RDKafkaErrorCode::SSL,
                "ssl://b:9093/1: SSL handshake failed: error:0A000086:SSL routines::certificate \
                 verify failed: broker certificate could not be verified",
            ),
            (
                RDKafkaErrorCode::BrokerTransportFailure,
                "ssl://b:9093/1: Receive failed: error:0A000412:SSL routines::sslv3 alert bad \
                 certificate: SSL alert number 42 (after 1ms in state APIVERSION_QUERY)",
            ),
        ];
        for (c, reason) in counted {
            assert!(
                Refusals::default().note(&code(c), reason),
                "{c:?}: {reason}"
            );
        }
        let not_counted = [
            (RDKafkaErrorCode::AllBrokersDown, "1/1 brokers are down"),
            // A broker going down mid-handshake reads so too.
            (
                RDKafkaErrorCode::BrokerTransportFailure,
                "ssl://b:9093/1: Disconnected: SSL connection closed by peer (after 0ms in state \
                 SSL_HANDSHAKE)",
            ),
        ];
        for (c, reason) in not_counted {
            assert!(
                !Refusals::default().note(&code(c), reason),
                "{c:?}: {reason}"
            );
        }

        let said =
            |refusal: Refusal| refused_while_running("b:9093", Duration::from_secs(30), &refusal);
        let credentials = said(Refusal::Credentials("Authentication failed".to_owned()));
        assert!(
            credentials.contains(
                "the Kafka cluster at \"b:9093\" refused hirestate's credentials while \
                 hirestate ran, and again on a fresh connection 30 s later: Authentication \
                 failed"
            ),
            "{credentials}"
        );
        assert!(
            credentials.contains("HIRESTATE_KAFKA_SASL_PASSWORD"),
            "{credentials}"
        );
        let certificate = said(Refusal::ClientCertificate(
            "alert bad certificate".to_owned(),
        ));
        assert!(
            certificate.contains("refused hirestate's TLS client certificate while hirestate ran"),
            "{certificate}"
        );
        assert!(
            certificate.contains("HIRESTATE_KAFKA_SSL_CERTIFICATE_LOCATION"),
            "{certificate}"
        );
        let handshake = said(Refusal::Handshake("certificate verify failed".to_owned()));
        assert!(
            handshake
                .contains("the TLS handshakes with the Kafka cluster at \"b:9093\" failed while"),
            "{handshake}"
        );
        assert!(
            handshake.contains("HIRESTATE_KAFKA_SSL_CA_LOCATION"),
            "{handshake}"
        );
    }

    #[test]
    fn a_refused_client_certificate_is_said_with_the_one_configured() {
        let mut config = rdkafka::ClientConfig::new();
        config.set("security.protocol", "SSL");
        assert_eq!(
            client_certificate(&config),
            "no client certificate is configured"
        );
        config.set("ssl.keystore.location", "/etc/kafka/client.p12");
        let said = client_certificate(&config);
        assert!(
            said.contains("ssl.keystore.location = \"/etc/kafka/client.p12\""),
            "{said}"
        );
        config.set("ssl.certificate.location", "/etc/kafka/client.pem");
        let said = client_certificate(&config);
        assert!(
            said.contains("ssl.certificate.location = \"/etc/kafka/client.pem\""),
            "{said}"
        );
    }

    #[test]
    fn a_tls_client_at_a_plaintext_listener_is_a_failed_handshake_not_an_outage() {
        let transport = KafkaError::MetadataFetch(RDKafkaErrorCode::BrokerTransportFailure);
        let at_plaintext = "ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: Disconnected: \
                            SSL connection closed by peer: connecting to a PLAINTEXT broker \
                            listener? (after 1ms in state SSL_HANDSHAKE)";
        assert_eq!(
            refusal(&transport, at_plaintext),
            Some(Refusal::Handshake(at_plaintext.to_owned()))
        );
        let closed = "ssl://127.0.0.1:9092/bootstrap: Disconnected: SSL connection closed by \
                      peer (after 0ms in state SSL_HANDSHAKE)";
        assert_eq!(
            refusal(&transport, closed),
            Some(Refusal::Handshake(closed.to_owned()))
        );
        let down = "127.0.0.1:9092/bootstrap: Connect to ipv4#127.0.0.1:9092 failed: Connection \
                    refused (after 0ms in state CONNECT)";
        assert_eq!(refusal(&transport, down), None);
        // A listener requiring a client certificate, sent none or one it does not trust (the
        // test broker's words, TLS 1.3), or TLS 1.3's certificate_required; and an alert about
        // something else.
        let certificate = "ssl://127.0.0.1:19097/bootstrap: Receive failed: error:0A000412:SSL \
                           routines::sslv3 alert bad certificate: SSL alert number 42 (after \
                           1ms in state APIVERSION_QUERY)";
        let required = "ssl://b:9093/bootstrap: SSL handshake failed: error:0A00045C:SSL \
                        routines::tlsv13 alert certificate required: SSL alert number 116";
        for reason in [certificate, required] {
            assert_eq!(
                refusal(&transport, reason),
                Some(Refusal::ClientCertificate(reason.to_owned()))
            );
        }
        let version = "ssl://b:9093/bootstrap: SSL handshake failed: error:0A00042E:SSL \
                       routines::tlsv1 alert protocol version: SSL alert number 70";
        assert_eq!(
            refusal(&transport, version),
            Some(Refusal::Handshake(version.to_owned()))
        );
        let sasl = KafkaError::MetadataFetch(RDKafkaErrorCode::Authentication);
        assert_eq!(
            refusal(&sasl, "Authentication failed"),
            Some(Refusal::Credentials("Authentication failed".to_owned()))
        );
    }
}
