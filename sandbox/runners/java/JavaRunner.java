// Java kernel: one JShell state, cells run snippet by snippet (see ../PROTOCOL.md).
//
// Started as (JDK 17; the flags are explained in PROTOCOL.md, "Runner start"):
//   java -Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC
//        --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED
//        --add-opens java.base/java.util=ALL-UNNAMED -cp <runner dir>/java JavaRunner
// Requests arrive on fd 3, events leave on fd 4: 4-byte big-endian length, then
// UTF-8 JSON. No libraries beyond the JDK.
//
// JShell runs with its "local" execution engine: snippets execute in this JVM
// (a thread per snippet), not in a second JVM reached over JDI as the default
// remote engine does. That halves the startup time and the memory, and lets
// System.out/err be replaced by streams of events directly. The costs: user
// code shares the kernel's JVM (System.exit() ends the kernel, as
// process.exit() does in Node), and stop() uses Thread.stop, which cannot end a
// thread blocked in native I/O.

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.RandomAccessFile;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import jdk.jshell.Diag;
import jdk.jshell.EvalException;
import jdk.jshell.JShell;
import jdk.jshell.JShellException;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import jdk.jshell.UnresolvedReferenceException;

public final class JavaRunner {
    static final int REQUEST_FD = 3;
    static final int EVENT_FD = 4;
    static final int MAX_FRAME = 64 << 20;
    static final long FLUSH_DELAY_NS = 20_000_000L; // a partial line waits at most this long
    static final int MAX_TEXT = 1 << 20; // characters per stdout/stderr event
    static final int MAX_ERROR_TEXT = 1 << 20;
    // What the jshell tool imports by default.
    static final String[] DEFAULT_IMPORTS = {
        "java.io.*", "java.math.*", "java.net.*", "java.nio.file.*", "java.util.*",
        "java.util.concurrent.*", "java.util.function.*", "java.util.prefs.*", "java.util.regex.*",
        "java.util.stream.*",
    };

    // ---- JSON -------------------------------------------------------------------

    static final class Json {
        private final String s;
        private int i;

        private Json(String s) {
            this.s = s;
        }

        static Object parse(String text) {
            Json p = new Json(text);
            p.space();
            Object value = p.value();
            p.space();
            if (p.i != p.s.length()) throw p.error("trailing characters");
            return value;
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException(what + " at offset " + i);
        }

        private void space() {
            while (i < s.length() && " \t\r\n".indexOf(s.charAt(i)) >= 0) i++;
        }

        private void expect(char c) {
            if (i >= s.length() || s.charAt(i) != c) throw error("expected '" + c + "'");
            i++;
        }

        private Object value() {
            if (i >= s.length()) throw error("unexpected end");
            char c = s.charAt(i);
            if (c == '{') {
                i++;
                Map<String, Object> map = new LinkedHashMap<>();
                space();
                if (i < s.length() && s.charAt(i) == '}') {
                    i++;
                    return map;
                }
                while (true) {
                    space();
                    String key = string();
                    space();
                    expect(':');
                    space();
                    map.put(key, value());
                    space();
                    if (i < s.length() && s.charAt(i) == ',') {
                        i++;
                        continue;
                    }
                    expect('}');
                    return map;
                }
            }
            if (c == '[') {
                i++;
                List<Object> list = new ArrayList<>();
                space();
                if (i < s.length() && s.charAt(i) == ']') {
                    i++;
                    return list;
                }
                while (true) {
                    space();
                    list.add(value());
                    space();
                    if (i < s.length() && s.charAt(i) == ',') {
                        i++;
                        continue;
                    }
                    expect(']');
                    return list;
                }
            }
            if (c == '"') return string();
            if (s.startsWith("true", i)) {
                i += 4;
                return Boolean.TRUE;
            }
            if (s.startsWith("false", i)) {
                i += 5;
                return Boolean.FALSE;
            }
            if (s.startsWith("null", i)) {
                i += 4;
                return null;
            }
            int start = i;
            while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) i++;
            if (start == i) throw error("unexpected character");
            try {
                return Double.parseDouble(s.substring(start, i));
            } catch (NumberFormatException e) {
                throw error("bad number");
            }
        }

        private String string() {
            expect('"');
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) throw error("unterminated string");
                char c = s.charAt(i++);
                if (c == '"') return b.toString();
                if (c < 0x20) throw error("control character in string");
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                if (i >= s.length()) throw error("unterminated string");
                char e = s.charAt(i++);
                switch (e) {
                    case '"': case '\\': case '/': b.append(e); break;
                    case 'b': b.append('\b'); break;
                    case 'f': b.append('\f'); break;
                    case 'n': b.append('\n'); break;
                    case 'r': b.append('\r'); break;
                    case 't': b.append('\t'); break;
                    case 'u':
                        if (i + 4 > s.length()) throw error("bad escape");
                        try {
                            b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        } catch (NumberFormatException x) {
                            throw error("bad escape");
                        }
                        i += 4;
                        break;
                    default: throw error("bad escape");
                }
            }
        }

        static String write(Object value) {
            StringBuilder b = new StringBuilder();
            write(value, b);
            return b.toString();
        }

        @SuppressWarnings("unchecked")
        private static void write(Object value, StringBuilder b) {
            if (value == null) {
                b.append("null");
            } else if (value instanceof String) {
                quote((String) value, b);
            } else if (value instanceof Boolean || value instanceof Integer || value instanceof Long) {
                b.append(value);
            } else if (value instanceof Map) {
                b.append('{');
                boolean first = true;
                for (Map.Entry<String, Object> e : ((Map<String, Object>) value).entrySet()) {
                    if (!first) b.append(',');
                    first = false;
                    quote(e.getKey(), b);
                    b.append(':');
                    write(e.getValue(), b);
                }
                b.append('}');
            } else {
                quote(String.valueOf(value), b);
            }
        }

        private static void quote(String s, StringBuilder b) {
            b.append('"');
            for (int k = 0; k < s.length(); k++) {
                char c = s.charAt(k);
                if (c == '"' || c == '\\') {
                    b.append('\\').append(c);
                } else if (c == '\n') {
                    b.append("\\n");
                } else if (c < 0x20) {
                    b.append(String.format("\\u%04x", (int) c));
                } else if (Character.isHighSurrogate(c) && k + 1 < s.length() && Character.isLowSurrogate(s.charAt(k + 1))) {
                    b.append(c).append(s.charAt(++k));
                } else if (Character.isSurrogate(c)) {
                    b.append('\uFFFD'); // lone surrogates cannot be UTF-8
                } else {
                    b.append(c);
                }
            }
            b.append('"');
        }
    }

    // ---- frames -----------------------------------------------------------------

    static FileDescriptor descriptor(int fd) throws ReflectiveOperationException {
        // No public API makes a FileDescriptor of a number: --add-opens java.base/java.io.
        FileDescriptor d = new FileDescriptor();
        Field field = FileDescriptor.class.getDeclaredField("fd");
        field.setAccessible(true);
        field.setInt(d, fd);
        return d;
    }

    static final class Events {
        private final FileOutputStream out;

        Events(FileOutputStream out) {
            this.out = out;
        }

        synchronized void write(Map<String, Object> event) {
            byte[] payload = Json.write(event).getBytes(StandardCharsets.UTF_8);
            if (payload.length > MAX_FRAME && "result".equals(event.get("type"))) {
                Map<String, Object> notice = map("type", "result", "text",
                    "<result of " + payload.length + " bytes not sent: larger than the 64 MiB frame limit>",
                    "extra", new LinkedHashMap<>(), "is_main_result", event.get("is_main_result"));
                payload = Json.write(notice).getBytes(StandardCharsets.UTF_8);
            }
            // One array, one write(): Thread.stop (an interrupt) cannot tear a frame,
            // asynchronous exceptions are not delivered inside the native write loop.
            byte[] frame = ByteBuffer.allocate(4 + payload.length).putInt(payload.length).put(payload).array();
            try {
                out.write(frame);
            } catch (IOException e) {
                Runtime.getRuntime().halt(1); // the host closed the event channel: nobody is listening
            }
        }
    }

    static Map<String, Object> map(Object... keysAndValues) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int k = 0; k < keysAndValues.length; k += 2) m.put((String) keysAndValues[k], keysAndValues[k + 1]);
        return m;
    }

    // stdout/stderr text is coalesced, as in the other runners: at most one stream
    // has pending text, sent when a write ends a line, before the other stream's
    // text or any other event, and at the latest FLUSH_DELAY after it was written.
    static final class Channel {
        private final Events events;
        private final Object lock = new Object();
        private final StringBuilder pending = new StringBuilder();
        private String stream;
        private long since;

        Channel(Events events) {
            this.events = events;
            Thread flusher = new Thread(this::flusher, "output-flusher");
            flusher.setDaemon(true);
            flusher.start();
        }

        void send(Map<String, Object> event) {
            synchronized (lock) {
                flushLocked();
                events.write(event);
            }
        }

        void write(String name, String text) {
            if (text.isEmpty()) return;
            synchronized (lock) {
                if (pending.length() > 0 && !name.equals(stream)) flushLocked();
                stream = name;
                int newline = text.lastIndexOf('\n');
                if (newline >= 0) {
                    pending.append(text, 0, newline + 1);
                    flushLocked();
                    text = text.substring(newline + 1);
                }
                if (text.isEmpty()) return;
                if (pending.length() == 0) {
                    since = System.nanoTime();
                    lock.notifyAll();
                }
                pending.append(text);
                if (pending.length() >= MAX_TEXT) flushLocked();
            }
        }

        void flush() {
            synchronized (lock) {
                flushLocked();
            }
        }

        private void flusher() {
            synchronized (lock) {
                while (true) {
                    try {
                        if (pending.length() == 0) {
                            lock.wait();
                            continue;
                        }
                        long delay = since + FLUSH_DELAY_NS - System.nanoTime();
                        if (delay > 0) lock.wait(delay / 1_000_000, (int) (delay % 1_000_000));
                        else flushLocked();
                    } catch (InterruptedException e) {
                        // keep flushing
                    }
                }
            }
        }

        private void flushLocked() {
            if (pending.length() == 0) return;
            String text = pending.toString();
            pending.setLength(0);
            for (int start = 0; start < text.length();) {
                int end = Math.min(start + MAX_TEXT, text.length());
                if (end < text.length() && Character.isHighSurrogate(text.charAt(end - 1))) end--;
                events.write(map("type", stream, "text", text.substring(start, end)));
                start = end;
            }
        }
    }

    // System.out / System.err: bytes decoded as UTF-8 (sequences split across
    // writes are kept for the next write) and sent as stdout/stderr text.
    static final class EventOutputStream extends OutputStream {
        private final Channel channel;
        private final String name;
        private final CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE).onUnmappableCharacter(CodingErrorAction.REPLACE);
        private ByteBuffer leftover = ByteBuffer.allocate(0);

        EventOutputStream(Channel channel, String name) {
            this.channel = channel;
            this.name = name;
        }

        @Override
        public void write(int b) {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public synchronized void write(byte[] bytes, int offset, int length) {
            ByteBuffer in = ByteBuffer.allocate(leftover.remaining() + length);
            in.put(leftover).put(bytes, offset, length).flip();
            CharBuffer out = CharBuffer.allocate(in.remaining() + 1);
            decoder.decode(in, out, false);
            leftover = ByteBuffer.allocate(in.remaining()).put(in);
            leftover.flip();
            out.flip();
            channel.write(name, out.toString());
        }

        @Override
        public void flush() {
            channel.flush();
        }
    }

    // ---- environment --------------------------------------------------------------

    /** Sets (value) or removes (null) a variable of System.getenv() and of the
     * environment ProcessBuilder gives children. Java has no API for this. */
    @SuppressWarnings("unchecked")
    static void setEnv(String key, String value) throws ReflectiveOperationException {
        Class<?> pe = Class.forName("java.lang.ProcessEnvironment");
        Field unmodifiable = pe.getDeclaredField("theUnmodifiableEnvironment");
        unmodifiable.setAccessible(true);
        Object wrapper = unmodifiable.get(null);
        Field inner = wrapper.getClass().getDeclaredField("m");
        inner.setAccessible(true);
        Map<String, String> strings = (Map<String, String>) inner.get(wrapper);
        Field environment = pe.getDeclaredField("theEnvironment");
        environment.setAccessible(true);
        Map<Object, Object> raw = (Map<Object, Object>) environment.get(null);
        Method variable = Class.forName("java.lang.ProcessEnvironment$Variable").getDeclaredMethod("valueOf", String.class);
        Method val = Class.forName("java.lang.ProcessEnvironment$Value").getDeclaredMethod("valueOf", String.class);
        variable.setAccessible(true);
        val.setAccessible(true);
        if (value == null) {
            strings.remove(key);
            raw.remove(variable.invoke(null, key));
        } else {
            strings.put(key, value);
            raw.put(variable.invoke(null, key), val.invoke(null, value));
        }
    }

    // ---- the kernel -----------------------------------------------------------------

    final Channel channel;
    final JShell shell;
    final SourceCodeAnalysis analysis;
    final InputStream originalIn = System.in;
    int executionCount;
    volatile boolean running;
    volatile boolean interrupted;
    final java.util.concurrent.atomic.AtomicBoolean stopping = new java.util.concurrent.atomic.AtomicBoolean();
    // snippet id -> {cell number, line of the cell where the snippet starts - 1}
    final Map<String, int[]> snippetLines = new HashMap<>();

    JavaRunner(Channel channel) {
        this.channel = channel;
        installStreams();
        shell = JShell.builder().executionEngine("local").out(System.out).err(System.err).build();
        analysis = shell.sourceCodeAnalysis();
    }

    void installStreams() {
        System.setOut(new PrintStream(new EventOutputStream(channel, "stdout"), true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(new EventOutputStream(channel, "stderr"), true, StandardCharsets.UTF_8));
    }

    void warmUp() {
        for (String name : DEFAULT_IMPORTS) shell.eval("import " + name + ";");
        shell.eval("int $warm = 1 + 1;"); // compiles and runs once: the first cell is faster
        shell.drop(shell.variables().filter(v -> v.name().equals("$warm")).findFirst().orElseThrow());
    }

    /** SIGINT (in a thread of its own): stops the running snippet. stop() does
     * nothing while a snippet is compiled rather than run, so it is repeated until
     * the cell ends; runCell starts no further snippet once interrupted is set. */
    void onSigint() {
        if (!running) return; // between cells SIGINT is ignored
        interrupted = true;
        if (!stopping.compareAndSet(false, true)) return;
        try {
            while (running && interrupted) {
                shell.stop();
                Thread.sleep(20);
            }
        } catch (InterruptedException e) {
            // give up; the next SIGINT tries again
        } finally {
            stopping.set(false);
        }
    }

    void protocolError(String message, String id) {
        channel.send(map("type", "error", "name", "ProtocolError", "value", message, "traceback", ""));
        channel.send(map("type", "end", "id", id, "status", "error", "execution_count", executionCount));
    }

    @SuppressWarnings("unchecked")
    void handle(byte[] payload) {
        Object parsed;
        try {
            String text = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(payload)).toString();
            parsed = Json.parse(text);
        } catch (Exception e) {
            protocolError("request is not valid JSON: " + e.getMessage(), "");
            return;
        }
        if (!(parsed instanceof Map)) {
            protocolError("request is not a JSON object", "");
            return;
        }
        Map<String, Object> request = (Map<String, Object>) parsed;
        Object op = request.get("op");
        String id = request.get("id") instanceof String ? (String) request.get("id") : "";
        if ("shutdown".equals(op)) shutdown(0);
        if (!"exec".equals(op)) {
            protocolError("unknown op " + Json.write(op), id);
            return;
        }
        if (!(request.get("id") instanceof String)) {
            protocolError("exec needs a string id", id);
            return;
        }
        if (!(request.get("code") instanceof String)) {
            protocolError("exec needs a string code", id);
            return;
        }
        Object stdin = request.get("stdin");
        if (stdin != null && (!(stdin instanceof String) || !((String) stdin).startsWith("/") || ((String) stdin).indexOf('\0') >= 0)) {
            protocolError("stdin must be an absolute path without NUL", id);
            return;
        }
        Map<String, String> env = new LinkedHashMap<>();
        Object envValue = request.get("env");
        if (envValue != null) {
            if (!(envValue instanceof Map)) {
                protocolError("env must be an object", id);
                return;
            }
            for (Map.Entry<String, Object> e : ((Map<String, Object>) envValue).entrySet()) {
                if (!(e.getValue() instanceof String)) {
                    protocolError("env value of " + Json.write(e.getKey()) + " is not a string", id);
                    return;
                }
                String key = e.getKey();
                String value = (String) e.getValue();
                if (key.isEmpty() || key.indexOf('=') >= 0 || key.indexOf('\0') >= 0 || value.indexOf('\0') >= 0) {
                    protocolError("invalid environment variable " + Json.write(key), id);
                    return;
                }
                env.put(key, value);
            }
        }
        InputStream cellIn = null;
        if (stdin != null) {
            try {
                cellIn = openStdin((String) stdin);
            } catch (IOException e) {
                protocolError("cannot open stdin " + Json.write(stdin) + ": " + e.getMessage(), id);
                return;
            }
        }
        runCell(id, (String) request.get("code"), env, cellIn);
    }

    /** The cell's stdin FIFO, opened for reading without waiting for a writer (a
     * read-write open of our own is held meanwhile), then unlinked. */
    static InputStream openStdin(String file) throws IOException {
        Path path = Paths.get(file);
        if (Files.isDirectory(path)) throw new IOException(file + " is a directory");
        if (!Files.exists(path)) throw new IOException("No such file or directory");
        FileInputStream in;
        try (RandomAccessFile writer = new RandomAccessFile(file, "rw")) {
            in = new FileInputStream(file);
        }
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            // best effort
        }
        return in;
    }

    void runCell(String id, String code, Map<String, String> env, InputStream cellIn) {
        executionCount++;
        Map<String, String> saved = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, String> e : env.entrySet()) {
                saved.put(e.getKey(), System.getenv(e.getKey()));
                setEnv(e.getKey(), e.getValue());
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            channel.write("stderr", "runner: cannot set the cell's environment: " + e + "\n");
        }
        if (cellIn != null) System.setIn(cellIn);
        Map<String, Object> error = null;
        Map<String, Object> result = null;
        interrupted = false;
        running = true;
        try {
            String rest = code;
            while (!interrupted) {
                SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(rest);
                if (info.completeness() == SourceCodeAnalysis.Completeness.EMPTY) break;
                String source = info.source();
                int consumed;
                if (source == null || !info.completeness().isComplete() && info.completeness() != SourceCodeAnalysis.Completeness.UNKNOWN) {
                    source = rest; // incomplete: let the compiler say what is missing
                    consumed = rest.length();
                } else {
                    consumed = rest.length() - info.remaining().length();
                }
                int start = code.length() - rest.length();
                int skip = 0;
                while (skip < consumed && Character.isWhitespace(rest.charAt(skip))) skip++;
                int line = countLines(code, start + skip);
                if (source == rest) source = rest.substring(skip); // lines count from its first one
                rest = rest.substring(consumed);
                result = null;
                error = evaluate(source, line);
                if (error != null) break;
                result = lastResult;
                if (rest.isBlank()) break;
            }
        } finally {
            running = false;
        }
        if (interrupted) {
            error = map("type", "error", "name", "Interrupted", "value", "Execution was interrupted by SIGINT",
                "traceback", "");
            installStreams(); // Thread.stop may have left the old ones half-way through a write
        }
        if (cellIn != null) {
            System.setIn(originalIn);
            try {
                cellIn.close();
            } catch (IOException e) {
                // nothing to do
            }
        }
        try {
            for (Map.Entry<String, String> e : saved.entrySet()) setEnv(e.getKey(), e.getValue());
        } catch (ReflectiveOperationException | RuntimeException e) {
            // reported when set
        }
        System.out.flush();
        System.err.flush();
        String status = "ok";
        if (error != null) {
            status = interrupted ? "interrupted" : "error";
            channel.send(error);
        } else if (result != null) {
            channel.send(result);
        }
        channel.send(map("type", "end", "id", id, "status", status, "execution_count", executionCount));
    }

    static int countLines(String s, int end) {
        int n = 0;
        for (int k = 0; k < end && k < s.length(); k++) if (s.charAt(k) == '\n') n++;
        return n;
    }

    Map<String, Object> lastResult;

    /** Evaluates one snippet; returns an error event or null (lastResult: its value). */
    Map<String, Object> evaluate(String source, int lineOffset) {
        lastResult = null;
        List<SnippetEvent> events = shell.eval(source);
        for (SnippetEvent event : events) {
            if (event.causeSnippet() != null) continue; // updates of other snippets
            Snippet snippet = event.snippet();
            snippetLines.put(snippet.id(), new int[] {executionCount, lineOffset});
            if (event.status() == Snippet.Status.REJECTED) return compilationError(snippet, lineOffset);
            JShellException exception = event.exception();
            if (exception != null) return exceptionError(exception);
            if (isExpression(snippet) && event.value() != null && !"null".equals(event.value()) && !event.value().isEmpty()) {
                lastResult = resultEvent(event.value());
            }
        }
        return null;
    }

    static boolean isExpression(Snippet snippet) {
        Snippet.SubKind sub = snippet.subKind();
        return snippet.kind() == Snippet.Kind.EXPRESSION || sub == Snippet.SubKind.TEMP_VAR_EXPRESSION_SUBKIND;
    }

    static Map<String, Object> resultEvent(String text) {
        // E2B strips the quotes of a string's representation: "hi" -> hi.
        if (text.length() >= 2 && (text.charAt(0) == '"' || text.charAt(0) == '\'')
                && text.charAt(text.length() - 1) == text.charAt(0)) {
            text = text.substring(1, text.length() - 1);
        }
        return map("type", "result", "text", text, "extra", new LinkedHashMap<>(), "is_main_result", Boolean.TRUE);
    }

    Map<String, Object> compilationError(Snippet snippet, int lineOffset) {
        List<String> messages = new ArrayList<>();
        StringBuilder traceback = new StringBuilder();
        String source = snippet.source();
        shell.diagnostics(snippet).filter(Diag::isError).forEach(diag -> {
            String message = diag.getMessage(Locale.ROOT);
            messages.add(message);
            long position = Math.max(0, Math.min(diag.getStartPosition(), source.length()));
            int lineStart = source.lastIndexOf('\n', (int) position - 1) + 1;
            int lineEnd = source.indexOf('\n', (int) position);
            if (lineEnd < 0) lineEnd = source.length();
            int line = lineOffset + countLines(source, (int) position) + 1;
            traceback.append("cell-").append(executionCount).append(':').append(line).append(": error: ")
                .append(message).append('\n').append(source, lineStart, lineEnd).append('\n')
                .append(" ".repeat((int) position - lineStart)).append("^\n");
        });
        if (messages.isEmpty()) messages.add("the snippet was rejected");
        return map("type", "error", "name", "CompilationError", "value", truncate(String.join("\n", messages)),
            "traceback", truncate(traceback.toString()));
    }

    Map<String, Object> exceptionError(JShellException exception) {
        String className;
        if (exception instanceof EvalException) {
            className = ((EvalException) exception).getExceptionClassName();
        } else if (exception instanceof UnresolvedReferenceException) {
            className = "UnresolvedReferenceException";
        } else {
            className = exception.getClass().getName();
        }
        String message = exception.getMessage();
        if (exception instanceof UnresolvedReferenceException) {
            Snippet snippet = ((UnresolvedReferenceException) exception).getSnippet();
            message = snippet instanceof jdk.jshell.DeclarationSnippet
                ? ((jdk.jshell.DeclarationSnippet) snippet).name() + " refers to something not declared: "
                    + String.join(", ", shell.unresolvedDependencies((jdk.jshell.DeclarationSnippet) snippet).toList())
                : "unresolved reference";
        }
        String name = className.substring(Math.max(className.lastIndexOf('.'), className.lastIndexOf('$')) + 1);
        StringBuilder traceback = new StringBuilder();
        describe(exception, className, message, traceback, 0);
        return map("type", "error", "name", name, "value", truncate(message == null ? "" : message),
            "traceback", truncate(traceback.toString()));
    }

    void describe(Throwable t, String className, String message, StringBuilder b, int depth) {
        b.append(className);
        if (message != null) b.append(": ").append(message);
        b.append('\n');
        for (StackTraceElement frame : t.getStackTrace()) {
            String cls = frame.getClassName();
            if (cls.startsWith("jdk.internal.reflect.") || cls.startsWith("java.lang.reflect.")
                    || cls.startsWith("jdk.jshell.") || cls.equals(JavaRunner.class.getName())) {
                break; // the runner calling the snippet
            }
            b.append("\tat ").append(formatFrame(frame)).append('\n');
        }
        Throwable cause = t.getCause();
        if (cause != null && depth < 20) {
            String causeClass = cause instanceof EvalException ? ((EvalException) cause).getExceptionClassName()
                : cause.getClass().getName();
            b.append("Caused by: ");
            describe(cause, causeClass, cause.getMessage(), b, depth + 1);
        }
    }

    /** A snippet frame, which JShell reports as class "", file "#<snippet id>",
     * method "" for top-level code: f(#12:2) -> f(cell-3:5), with cell lines. */
    String formatFrame(StackTraceElement frame) {
        String file = frame.getFileName();
        if (file == null || !file.startsWith("#")) return frame.toString();
        String cls = frame.getClassName();
        String method = frame.getMethodName().isEmpty() || frame.getMethodName().equals("do_it$")
            ? "<cell>" : frame.getMethodName();
        if (!cls.isEmpty() && !cls.startsWith("REPL.")) method = cls + "." + method;
        int[] where = snippetLines.get(file.substring(1));
        if (where == null) return method + "(" + file + ":" + frame.getLineNumber() + ")";
        return method + "(cell-" + where[0] + ":" + (where[1] + frame.getLineNumber()) + ")";
    }

    static String truncate(String s) {
        return s.length() <= MAX_ERROR_TEXT ? s : s.substring(0, MAX_ERROR_TEXT);
    }

    static void shutdown(int status) {
        System.out.flush();
        System.err.flush();
        Runtime.getRuntime().halt(status); // not exit: user threads must not keep the kernel alive
    }

    static byte[] readExact(DataInputStream in, int size) throws IOException {
        byte[] data = new byte[size];
        in.readFully(data);
        return data;
    }

    @SuppressWarnings({"removal", "deprecation"})
    public static void main(String[] args) throws Exception {
        DataInputStream requests = new DataInputStream(new FileInputStream(descriptor(REQUEST_FD)));
        Events events = new Events(new FileOutputStream(descriptor(EVENT_FD)));
        Channel channel = new Channel(events);
        JavaRunner kernel = new JavaRunner(channel);
        sun.misc.Signal.handle(new sun.misc.Signal("INT"), signal -> kernel.onSigint());
        // System.exit() in a cell ends the kernel (as process.exit() does in Node):
        // a SecurityManager could refuse it, but JDK 17 then warns on the raw stderr.
        Runtime.getRuntime().addShutdownHook(new Thread(channel::flush));
        channel.send(map("type", "ready", "language", "java", "version", System.getProperty("java.version"),
            "pid", ProcessHandle.current().pid()));
        kernel.warmUp(); // before the first request is read, after the host knows we are up
        while (true) {
            int size;
            try {
                size = requests.readInt();
            } catch (EOFException e) {
                break;
            }
            if (size < 0 || size > MAX_FRAME) {
                long left = size & 0xffffffffL;
                byte[] skip = new byte[1 << 20];
                try {
                    while (left > 0) {
                        int n = (int) Math.min(left, skip.length);
                        requests.readFully(skip, 0, n);
                        left -= n;
                    }
                } catch (EOFException e) {
                    break;
                }
                kernel.protocolError("request frame larger than 64 MiB", "");
                continue;
            }
            byte[] payload;
            try {
                payload = readExact(requests, size);
            } catch (EOFException e) {
                break;
            }
            kernel.handle(payload);
        }
        shutdown(0);
    }
}
