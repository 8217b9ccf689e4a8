// Writes the private key of one entry of a PKCS#12 keystore as an unencrypted PKCS#8 PEM file
// (what librdkafka's ssl.key.location reads), since keytool exports certificates only. Used by
// kafka.sh for the test client certificates:  java KeyPem.java STORE.p12 ALIAS PASSWORD OUT.pem
import java.io.FileInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.Key;
import java.security.KeyStore;
import java.util.Base64;

public class KeyPem {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: java KeyPem.java STORE.p12 ALIAS PASSWORD OUT.pem");
            System.exit(2);
        }
        char[] password = args[2].toCharArray();
        KeyStore store = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) {
            store.load(in, password);
        }
        Key key = store.getKey(args[1], password);
        if (key == null) {
            throw new IllegalArgumentException("no key under alias " + args[1] + " in " + args[0]);
        }
        String body = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
            .encodeToString(key.getEncoded());
        String pem = "-----BEGIN PRIVATE KEY-----\n" + body + "\n-----END PRIVATE KEY-----\n";
        Files.writeString(Path.of(args[3]), pem, StandardCharsets.US_ASCII);
    }
}
