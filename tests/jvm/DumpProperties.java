// Loads each file named on the command line with java.util.Properties (UTF-8 reader) and prints
// the resulting map, sorted by key, one entry a line, with every character outside printable
// ASCII (and the backslash) written as a backslash-u escape of its UTF-16 code unit:
//
//   FILE <path> OK|ERROR
//   <escaped key>\t<escaped value>
//
// Used by tests/config_jvm.rs to check Flumen's properties reader against the JDK.

import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.TreeSet;

public final class DumpProperties {
    private static String escape(String s) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c > 0x7e || c == '\\') {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.toString();
    }

    public static void main(String[] args) throws Exception {
        StringBuilder out = new StringBuilder();
        for (String path : args) {
            Properties props = new Properties();
            try (Reader in = new InputStreamReader(new FileInputStream(path), StandardCharsets.UTF_8)) {
                props.load(in);
            } catch (IllegalArgumentException e) {
                out.append("FILE ").append(path).append(" ERROR\n");
                continue;
            }
            out.append("FILE ").append(path).append(" OK\n");
            for (String key : new TreeSet<>(props.stringPropertyNames())) {
                out.append(escape(key)).append('\t').append(escape(props.getProperty(key))).append('\n');
            }
        }
        System.out.print(out);
    }
}
