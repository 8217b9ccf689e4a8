// Answers whether a Kafka broker serves metadata requests: exit 0 when describeCluster
// returns a node within the timeout, 1 otherwise. Used by kafka.sh to wait for readiness.
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class Ping {
    public static void main(String[] args) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "2000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "3000");
        try (Admin admin = Admin.create(p)) {
            int nodes = admin.describeCluster().nodes().get(4, TimeUnit.SECONDS).size();
            System.exit(nodes > 0 ? 0 : 1);
        } catch (Exception e) {
            System.exit(1);
        }
    }
}
