//! Confluent wire format against any Confluent-API schema registry, through
//! `schema_registry_converter`: `0x00`, 4-byte big-endian schema id, Avro body.
//!
//! Decoding fetches the writer schema by id (`GET /schemas/ids/{id}?deleted=true`, cached by the
//! converter and, as a prebuilt reader, here) and resolves it against our reader schema, so a
//! producer on a newer or older compatible schema is read correctly. The converter's own
//! `decode` reads with the writer schema only, hence `AvroDecoder::get_schema` + our decode.
//!
//! (`AvroDecoder`/`AvroEncoder` are used directly, in an `Arc`, rather than the `easy`
//! wrappers, because only they expose `get_schema` and `remove_errors_from_cache`: the converter
//! caches non-retryable errors, and a registry 500 is transient for us.)
//!
//! Encoding registers our compiled-in schema under TopicNameStrategy (`<topic>-value`,
//! `POST /subjects/<topic>-value/versions`, which returns the existing id when already
//! registered; cached per subject by the converter) and frames our own Avro body with the id.
//!
//! Registry failures are classified once, in [`registry_error`]: transient (network, 5xx, 408,
//! 429) → [`CodecError::RegistryUnavailable`] (retryable); 401/403 →
//! [`CodecError::RegistryDenied`] (the credentials: the processor stops); 404 on an id →
//! [`CodecError::UnknownSchemaId`]; anything else → [`CodecError::Registry`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use super::framing::{confluent_id, CONFLUENT_HEADER_LEN, CONFLUENT_MAGIC};
use super::schemas::{ReaderSchema, WriterSchema};
use super::{CodecError, Framing};

/// A handle on one schema registry: the converter's caches plus our prebuilt writer readers.
/// Cheap to clone; clones share caches.
#[derive(Clone)]
pub(crate) struct Registry {
    decoder: Arc<AvroDecoder>,
    encoder: Arc<AvroEncoder>,
    /// Writer schemas by registry id, each with its datum reader built once.
    writers: Arc<RwLock<HashMap<u32, Arc<WriterSchema>>>>,
}

impl Registry {
    pub fn new(settings: SrSettings) -> Self {
        Registry {
            decoder: Arc::new(AvroDecoder::new(settings.clone())),
            encoder: Arc::new(AvroEncoder::new(settings)),
            writers: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// Decodes a Confluent payload (already detected as such) to a value of `reader`.
    pub async fn decode(&self, bytes: &[u8], reader: &ReaderSchema) -> Result<Value, CodecError> {
        let id = confluent_id(bytes).ok_or(CodecError::TruncatedHeader {
            framing: Framing::Confluent,
            got: bytes.len(),
            need: CONFLUENT_HEADER_LEN,
        })?;
        let writer = self.writer(id).await?;
        writer
            .decode(&bytes[CONFLUENT_HEADER_LEN..], reader)
            .map_err(|e| match e {
                CodecError::AvroBody { schema, problem } => CodecError::AvroBody {
                    schema: format!("{schema} (registry id {id})"),
                    problem,
                },
                other => other,
            })
    }

    async fn writer(&self, id: u32) -> Result<Arc<WriterSchema>, CodecError> {
        if let Some(w) = self.cached(id) {
            return Ok(w);
        }
        let fetched = self.decoder.get_schema(id).await.map_err(|e| {
            let err = registry_error(&e, Some(id));
            if err.retryable() && e.cached {
                // The converter caches non-retryable errors; a 500 is transient for us.
                self.decoder.remove_errors_from_cache();
            }
            err
        })?;
        let writer = Arc::new(WriterSchema::new(fetched.parsed.clone())?);
        if let Ok(mut cache) = self.writers.write() {
            cache.insert(id, writer.clone());
        }
        Ok(writer)
    }

    fn cached(&self, id: u32) -> Option<Arc<WriterSchema>> {
        // A poisoned lock only means another task panicked mid-insert; the map is still valid.
        match self.writers.read() {
            Ok(g) => g.get(&id).cloned(),
            Err(p) => p.into_inner().get(&id).cloned(),
        }
    }

    /// Encodes `content` under `own` (our compiled-in schema), registered for `<topic>-value`.
    pub async fn encode(
        &self,
        content: Content,
        own: &WriterSchema,
        topic: &str,
    ) -> Result<Vec<u8>, CodecError> {
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(
            topic.to_string(),
            false,
            SuppliedSchema::new(
                Some(own.full_name.clone()),
                SchemaType::Avro,
                own.json.clone(),
            ),
        );
        let subject = format!("{topic}-value");
        let registered = self
            .encoder
            .get_schema_and_id(&subject, strategy)
            .await
            .map_err(|e| {
                let err = registry_error(&e, None);
                if err.retryable() && e.cached {
                    self.encoder.remove_errors_from_cache();
                }
                err
            })?;
        let body = match content {
            Content::Body(body) => body,
            Content::Value(value) => own.encode(&value)?,
        };
        let mut out = Vec::with_capacity(CONFLUENT_HEADER_LEN + body.len());
        out.push(CONFLUENT_MAGIC);
        out.extend_from_slice(&registered.id.to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }
}

/// What a record is encoded from: its body already written (by a direct writer), or its
/// `Value`, written once the schema is registered.
pub(crate) enum Content {
    Body(Vec<u8>),
    Value(Value),
}

/// Classifies a converter error (see the module docs).
fn registry_error(e: &SRCError, id: Option<u32>) -> CodecError {
    let detail = e.to_string();
    let transient = e.retriable
        || ["status 5", "status 408", "status 429"]
            .iter()
            .any(|s| e.error.contains(s));
    if transient {
        return CodecError::RegistryUnavailable { detail };
    }
    if ["status 401", "status 403"]
        .iter()
        .any(|s| e.error.contains(s))
    {
        return CodecError::RegistryDenied { detail };
    }
    match id {
        Some(id) if e.error.contains("status 404") => CodecError::UnknownSchemaId { id, detail },
        _ => CodecError::Registry { detail },
    }
}
