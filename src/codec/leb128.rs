//! Unsigned LEB128 varints: Avro's integer encoding (after zigzag) and the state codec's.

/// `n` as an unsigned LEB128 varint: the bytes, and how many of them are used.
pub(crate) fn encode(mut n: u64) -> ([u8; 10], usize) {
    let mut buf = [0u8; 10];
    let mut len = 0;
    while n >= 0x80 {
        buf[len] = (n as u8) | 0x80;
        n >>= 7;
        len += 1;
    }
    buf[len] = n as u8;
    (buf, len + 1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn seven_bits_a_byte_low_first_with_the_high_bit_as_continuation() {
        let bytes = |n| {
            let (b, len) = super::encode(n);
            b[..len].to_vec()
        };
        assert_eq!(bytes(0), [0]);
        assert_eq!(bytes(127), [0x7f]);
        assert_eq!(bytes(128), [0x80, 0x01]);
        assert_eq!(bytes(300), [0xac, 0x02]);
        assert_eq!(bytes(u64::MAX).len(), 10);
        assert_eq!(bytes(u64::MAX)[9], 0x01);
    }
}
