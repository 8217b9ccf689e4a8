// Prints the test broker's request counts by type (kafka.network RequestMetrics, cumulative
// since it started), and the records and bytes it took in, once every INTERVAL_MS: what a run
// of the processor or of e2e's pipe asks of the broker, diffed between two lines. A benchmark
// diagnostic (README "Benchmarks"); attaches to the broker's JVM, so it must run as its user:
//   java deploy/kafka/Requests.java "$(cat target/kafka/broker.pid)" 250
import com.sun.tools.attach.VirtualMachine;
import java.util.Map;
import java.util.TreeMap;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class Requests {
    public static void main(String[] args) throws Exception {
        if (args.length < 1 || args.length > 2) {
            System.err.println("usage: java deploy/kafka/Requests.java BROKER_PID [INTERVAL_MS]");
            System.exit(2);
        }
        String address = VirtualMachine.attach(args[0]).startLocalManagementAgent();
        MBeanServerConnection jmx =
            JMXConnectorFactory.connect(new JMXServiceURL(address)).getMBeanServerConnection();
        long interval = args.length > 1 ? Long.parseLong(args[1]) : 1000;
        ObjectName requests =
            new ObjectName("kafka.network:type=RequestMetrics,name=RequestsPerSec,*");
        while (true) {
            Map<String, Long> counts = new TreeMap<>();
            for (ObjectName n : jmx.queryNames(requests, null)) {
                long count = ((Number) jmx.getAttribute(n, "Count")).longValue();
                counts.merge(n.getKeyProperty("request"), count, Long::sum);
            }
            for (String meter : new String[] {"MessagesInPerSec", "BytesInPerSec"}) {
                ObjectName n = new ObjectName("kafka.server:type=BrokerTopicMetrics,name=" + meter);
                counts.put(meter, ((Number) jmx.getAttribute(n, "Count")).longValue());
            }
            StringBuilder line = new StringBuilder(String.format("%.3f", System.currentTimeMillis() / 1000.0));
            counts.forEach((k, v) -> { if (v > 0) line.append(' ').append(k).append('=').append(v); });
            System.out.println(line);
            Thread.sleep(interval);
        }
    }
}
