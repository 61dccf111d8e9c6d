//! What every decoder target checks: the decoder answers any bytes with a value or an error, never
//! a panic, and a value it accepts encodes to bytes that decode to the same encoding again (a
//! decoder and encoder that disagree would let two replicas read one entry differently).

use iroh_raft::proto::{decode_body, encode_frame};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes `data` as a frame body of `T`; if that succeeds, checks the round trip.
pub fn frame_round_trip<T: Serialize + DeserializeOwned>(data: &[u8]) {
    let Ok(value) = decode_body::<T>(data) else {
        return;
    };
    let encoded = encode_frame(&value).expect("a decoded value encodes");
    let again = decode_body::<T>(&encoded[4..]).expect("an encoded value decodes");
    let twice = encode_frame(&again).expect("it encodes again");
    assert_eq!(encoded, twice, "decode and encode disagree");
}
