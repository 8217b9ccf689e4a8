// Grants the test broker's SASL user `limited` the ACLs tests/processor_acls.rs relies on
// (all PREFIXED, all ALLOW; adding a binding that exists already changes nothing):
//   topics    acl-      READ, DESCRIBE, DESCRIBE_CONFIGS
//   topics    acl-w-    WRITE
//   groups    acl-g-    READ, DESCRIBE
//   txn ids   acl-      WRITE, DESCRIBE
// Run by kafka.sh once the broker answers: java Acls.java BOOTSTRAP
// Tests that take an access right away while the processor runs add and remove a DENY on one
// topic (LITERAL, so no other test's topics are touched):
//   java Acls.java BOOTSTRAP deny|undeny READ|WRITE TOPIC
// Tests that revoke credentials while the processor runs make and delete a SCRAM-SHA-256 user
// (the user `rotating` is a super user, server.properties.in):
//   java Acls.java BOOTSTRAP scram USER PASSWORD | unscram USER
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;

public class Acls {
    static void allow(List<AclBinding> out, ResourceType type, String prefix, AclOperation... ops) {
        for (AclOperation op : ops) {
            out.add(new AclBinding(
                new ResourcePattern(type, prefix, PatternType.PREFIXED),
                new AccessControlEntry("User:limited", "*", op, AclPermissionType.ALLOW)));
        }
    }

    public static void main(String[] args) throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        if (args.length >= 3 && (args[1].equals("scram") || args[1].equals("unscram"))) {
            UserScramCredentialAlteration change = args[1].equals("scram")
                ? new UserScramCredentialUpsertion(args[2],
                    new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), args[3])
                : new UserScramCredentialDeletion(args[2], ScramMechanism.SCRAM_SHA_256);
            try (Admin admin = Admin.create(p)) {
                admin.alterUserScramCredentials(List.of(change)).all().get(30, TimeUnit.SECONDS);
            }
            return;
        }
        if (args.length == 4) {
            AclOperation op = AclOperation.fromString(args[2]);
            ResourcePattern topic = new ResourcePattern(ResourceType.TOPIC, args[3], PatternType.LITERAL);
            AccessControlEntry deny = new AccessControlEntry("User:limited", "*", op, AclPermissionType.DENY);
            try (Admin admin = Admin.create(p)) {
                if (args[1].equals("deny")) {
                    admin.createAcls(List.of(new AclBinding(topic, deny))).all().get(30, TimeUnit.SECONDS);
                } else if (args[1].equals("undeny")) {
                    AclBindingFilter f = new AclBindingFilter(
                        new ResourcePatternFilter(ResourceType.TOPIC, args[3], PatternType.LITERAL),
                        new AccessControlEntryFilter("User:limited", "*", op, AclPermissionType.DENY));
                    admin.deleteAcls(List.of(f)).all().get(30, TimeUnit.SECONDS);
                } else {
                    throw new IllegalArgumentException("deny or undeny, not " + args[1]);
                }
            }
            return;
        }
        List<AclBinding> acls = new ArrayList<>();
        allow(acls, ResourceType.TOPIC, "acl-",
            AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS);
        allow(acls, ResourceType.TOPIC, "acl-w-", AclOperation.WRITE);
        allow(acls, ResourceType.GROUP, "acl-g-", AclOperation.READ, AclOperation.DESCRIBE);
        allow(acls, ResourceType.TRANSACTIONAL_ID, "acl-", AclOperation.WRITE, AclOperation.DESCRIBE);
        try (Admin admin = Admin.create(p)) {
            admin.createAcls(acls).all().get(30, TimeUnit.SECONDS);
        }
    }
}
