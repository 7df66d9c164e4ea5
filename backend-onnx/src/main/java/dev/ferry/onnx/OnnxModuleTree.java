package dev.ferry.onnx;

import ai.onnx.proto.OnnxMl.NodeProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The module tree of an exported model, rebuilt from its graph as the core's {@link Module} tree.
 *
 * <p>Exports by {@code torch.onnx.export(dynamo=True)} carry, on every node, {@code pkg.torch.onnx.name_scopes}
 * (module path from the root, then the op) and {@code pkg.torch.onnx.class_hierarchy} (fully qualified
 * classes along the same path): they give names and classes exactly as the PyTorch model has them. The
 * {@code pkg.torch.onnx.fx_node} text names the parameters ({@code %p_...}) and buffers ({@code %b_...}) each
 * op reads, which recovers parameters the exporter renamed (a Linear weight constant-folded into its
 * transpose {@code val_120}), deduplicated (equal weights stored once) or tied. Older exports have no
 * metadata: scopes come from node names ({@code /encoder/layer.0/attention/self/query/MatMul} →
 * {@code encoder.layer.0.attention.self.query}), classes are {@link #UNKNOWN_CLASS}, and initializers are
 * owned by name ({@code encoder.layer.0.attention.self.query.bias}) or, for an anonymous MatMul weight, by
 * the scope that multiplies by it (registered as {@code weight}, transposed back to PyTorch's layout).
 *
 * <p>What an export cannot give back: modules without any op (Dropout in eval mode, an unused activation,
 * containers) are absent unless a descendant has ops; parameters the exporter removed (an all-zero bias
 * folded away) and buffers folded into constants (rotary {@code inv_freq}) have no tensor to point at, and
 * are listed by {@link #unresolvedTensors}. Children appear in execution order, not registration order.
 */
public final class OnnxModuleTree {

    public static final String UNKNOWN_CLASS = "Unknown";
    static final String NAME_SCOPES = "pkg.torch.onnx.name_scopes";
    static final String CLASS_HIERARCHY = "pkg.torch.onnx.class_hierarchy";
    static final String FX_NODE = "pkg.torch.onnx.fx_node";
    private static final Pattern FX_REF = Pattern.compile("%([pb])_([A-Za-z0-9_]+)");

    /** Where a tensor of the tree comes from in the graph. */
    public record TensorSource(String initializer, boolean transposed) {
    }

    private final OnnxModel model;
    private final boolean fromMetadata;
    private final Module root;
    private final String[] nodeScope;
    private final Map<String, Module> modules = new LinkedHashMap<>();
    private final Map<String, TensorSource> sources = new LinkedHashMap<>();
    private final Map<String, TensorSlot> slotsByName = new LinkedHashMap<>();
    private final Set<String> unresolved = new LinkedHashSet<>();

    private OnnxModuleTree(OnnxModel model) {
        this.model = model;
        int n = model.nodes().size();
        this.nodeScope = new String[n];
        boolean meta = false;
        for (NodeProto node : model.nodes()) {
            if (metadata(node, NAME_SCOPES) != null) {
                meta = true;
                break;
            }
        }
        this.fromMetadata = meta;
        LinkedHashMap<String, String> classes = new LinkedHashMap<>();
        classes.put("", null);
        for (int i = 0; i < n; i++) {
            NodeProto node = model.node(i);
            nodeScope[i] = meta ? scopeFromMetadata(node, classes) : scopeFromName(node, classes);
        }
        String rootClass = classes.get("");
        this.root = new Module(rootClass == null ? UNKNOWN_CLASS : rootClass);
        modules.put("", root);
        for (Map.Entry<String, String> e : classes.entrySet()) {
            if (!e.getKey().isEmpty()) {
                ensure(e.getKey(), classes);
            }
        }
        if (meta) {
            collectFxTensors();
        }
        collectNamedInitializers();
        if (!meta) {
            collectAnonymousMatMulWeights();
        }
        collectByConsumer();
    }

    /** Builds the tree of {@code model}. */
    public static OnnxModuleTree build(OnnxModel model) {
        return new OnnxModuleTree(model);
    }

    public Module root() {
        return root;
    }

    public OnnxModel model() {
        return model;
    }

    /** Whether names and classes came from the exporter's metadata (else from node names). */
    public boolean fromMetadata() {
        return fromMetadata;
    }

    /** Innermost module path of node {@code index} ({@code ""} for the root). */
    public String scopeOf(int nodeIndex) {
        return nodeScope[nodeIndex];
    }

    /** The module at {@code path}, or {@code null}. */
    public Module module(String path) {
        return modules.get(path);
    }

    public Set<String> modulePaths() {
        return Collections.unmodifiableSet(modules.keySet());
    }

    /** Full tensor name ({@code model.layers.0.self_attn.q_proj.weight}) → the initializer holding it. */
    public Map<String, TensorSource> tensorSources() {
        return Collections.unmodifiableMap(sources);
    }

    /** Tensors the metadata names whose data the export no longer has (folded away or folded into constants). */
    public Set<String> unresolvedTensors() {
        return Collections.unmodifiableSet(unresolved);
    }

    // ---- scopes -----------------------------------------------------------------------------------------------

    private static String metadata(NodeProto node, String key) {
        for (StringStringEntryProto e : node.getMetadataPropsList()) {
            if (e.getKey().equals(key)) {
                return e.getValue();
            }
        }
        return null;
    }

    private String scopeFromMetadata(NodeProto node, Map<String, String> classes) {
        String scopesText = metadata(node, NAME_SCOPES);
        if (scopesText == null) {
            return "";
        }
        List<String> scopes = parsePythonStrings(scopesText);
        String classesText = metadata(node, CLASS_HIERARCHY);
        List<String> classNames = classesText == null ? List.of() : parsePythonStrings(classesText);
        // the last entry is the op itself; a path that does not start at the root ('') is not a module path
        if (scopes.size() < 2 || !scopes.get(0).isEmpty()) {
            return "";
        }
        String current = "";
        for (int i = 0; i < scopes.size() - 1; i++) {
            String s = stripCallIndex(scopes.get(i));
            if (i > 0 && !(current.isEmpty() ? !s.isEmpty() : s.startsWith(current + "."))) {
                break; // not nested under the previous scope: stop at the last consistent module
            }
            String cls = i < classNames.size() ? shortClass(classNames.get(i)) : null;
            if (cls != null && classes.get(s) == null) {
                classes.put(s, cls);
            } else {
                classes.putIfAbsent(s, null);
            }
            current = s;
        }
        addIntermediates(current, classes);
        return current;
    }

    private String scopeFromName(NodeProto node, Map<String, String> classes) {
        String name = node.getName();
        if (!name.startsWith("/")) {
            return "";
        }
        String[] parts = name.substring(1).split("/");
        List<String> segs = new ArrayList<>();
        for (int i = 0; i < parts.length - 1; i++) {
            if (!parts[i].isEmpty()) {
                segs.add(parts[i]);
            }
        }
        String scope = String.join(".", segs);
        addIntermediates(scope, classes);
        return scope;
    }

    /** Registers every prefix of {@code path} (so containers such as {@code model.layers} exist). */
    private static void addIntermediates(String path, Map<String, String> classes) {
        if (path.isEmpty()) {
            return;
        }
        String[] segs = path.split("\\.");
        StringBuilder p = new StringBuilder();
        for (String s : segs) {
            if (p.length() > 0) {
                p.append('.');
            }
            p.append(s);
            classes.putIfAbsent(p.toString(), null);
        }
    }

    private void ensure(String path, Map<String, String> classes) {
        if (modules.containsKey(path)) {
            return;
        }
        int dot = path.lastIndexOf('.');
        String parentPath = dot < 0 ? "" : path.substring(0, dot);
        ensure(parentPath, classes);
        String local = path.substring(dot + 1);
        String cls = classes.get(path);
        if (cls == null) {
            cls = inferContainerClass(path);
        }
        Module m = modules.get(parentPath).addChild(local, new Module(cls));
        modules.put(path, m);
    }

    /** A container without ops of its own: {@code ModuleList} when its children are indices. */
    private String inferContainerClass(String path) {
        String prefix = path + ".";
        boolean sawChild = false;
        for (String other : nodeScopesAndPrefixes()) {
            if (other.startsWith(prefix)) {
                sawChild = true;
                String next = other.substring(prefix.length()).split("\\.")[0];
                if (!next.chars().allMatch(Character::isDigit)) {
                    return UNKNOWN_CLASS;
                }
            }
        }
        return sawChild && fromMetadata ? "ModuleList" : UNKNOWN_CLASS;
    }

    private Set<String> scopeCache;

    private Set<String> nodeScopesAndPrefixes() {
        if (scopeCache == null) {
            scopeCache = new LinkedHashSet<>();
            for (String s : nodeScope) {
                if (s != null) {
                    scopeCache.add(s);
                }
            }
        }
        return scopeCache;
    }

    private static String stripCallIndex(String scope) {
        int at = scope.indexOf('@');
        return at < 0 ? scope : scope.substring(0, at);
    }

    private static String shortClass(String qualified) {
        String q = qualified.trim();
        int dot = q.lastIndexOf('.');
        return dot < 0 ? q : q.substring(dot + 1);
    }

    /** Parses a Python list of string literals, as the exporter writes it: {@code ['', 'model', "it's"]}. */
    static List<String> parsePythonStrings(String text) {
        List<String> out = new ArrayList<>();
        int i = 0;
        int n = text.length();
        while (i < n) {
            char c = text.charAt(i);
            if (c == '\'' || c == '"') {
                StringBuilder sb = new StringBuilder();
                i++;
                while (i < n && text.charAt(i) != c) {
                    char d = text.charAt(i);
                    if (d == '\\' && i + 1 < n) {
                        i++;
                        d = text.charAt(i);
                    }
                    sb.append(d);
                    i++;
                }
                out.add(sb.toString());
            }
            i++;
        }
        return out;
    }

    // ---- tensors -----------------------------------------------------------------------------------------

    private static String flat(String dotted) {
        return dotted.replace('.', '_');
    }

    private void collectFxTensors() {
        Map<String, String> initializerByFlatName = new LinkedHashMap<>();
        for (String init : model.initializerNames()) {
            initializerByFlatName.putIfAbsent(flat(init), init);
        }
        for (int i = 0; i < model.nodes().size(); i++) {
            NodeProto node = model.node(i);
            String fx = metadata(node, FX_NODE);
            if (fx == null) {
                continue;
            }
            int args = fx.indexOf("](args");
            String argText = args < 0 ? fx : fx.substring(args);
            String target = args < 0 ? "" : fx.substring(0, args);
            Matcher m = FX_REF.matcher(argText);
            while (m.find()) {
                boolean parameter = m.group(1).equals("p");
                String flatName = m.group(2);
                String canonical = canonicalName(flatName, nodeScope[i], initializerByFlatName);
                resolveFxTensor(canonical, parameter, node, nodeScope[i], target.contains("aten.linear"));
            }
        }
    }

    private String canonicalName(String flatName, String scope, Map<String, String> initializerByFlatName) {
        String init = initializerByFlatName.get(flatName);
        if (init != null && owningModule(init) != null) {
            return init;
        }
        String s = scope;
        while (!s.isEmpty()) {
            String prefix = flat(s) + "_";
            if (flatName.startsWith(prefix) && flatName.length() > prefix.length()) {
                return s + "." + flatName.substring(prefix.length());
            }
            int dot = s.lastIndexOf('.');
            s = dot < 0 ? "" : s.substring(0, dot);
        }
        return flatName;
    }

    /** The module path that a full tensor name belongs to (its longest module prefix), or null. */
    private String owningModule(String tensorName) {
        int dot = tensorName.lastIndexOf('.');
        if (dot < 0) {
            return null; // val_27, onnx::MatMul_787: exporter constants, no module path
        }
        String path = tensorName.substring(0, dot);
        return modules.containsKey(path) ? path : null;
    }

    private void resolveFxTensor(String canonical, boolean parameter, NodeProto node, String scope, boolean linear) {
        TensorSlot slot = slotsByName.get(canonical);
        if (slot == null) {
            TensorSource src = findSource(canonical, node, linear);
            if (src == null) {
                unresolved.add(canonical);
                return;
            }
            unresolved.remove(canonical);
            String owner = owningModule(canonical);
            if (owner == null) {
                owner = scope;
            }
            String local = owner.isEmpty() ? canonical : canonical.substring(owner.length() + 1);
            if (local.contains(".")) {
                local = local.replace('.', '_');
            }
            slot = register(owner, local, specOf(src), parameter, canonical, src);
            if (slot == null) {
                return;
            }
        }
        // a tensor read from a scope outside its owner is tied there too (GPT-2's wte reads lm_head.weight)
        String owner = owningModule(canonical);
        if (owner != null && !scope.equals(owner) && !scope.startsWith(owner.isEmpty() ? "" : owner + ".")) {
            Module user = modules.get(scope);
            String local = canonical.substring(canonical.lastIndexOf('.') + 1);
            if (user != null && !user.ownTensors().containsKey(local) && !user.children().containsKey(local)) {
                if (parameter) {
                    user.registerParameter(local, slot);
                } else {
                    user.registerBuffer(local, slot);
                }
                String tiedName = scope.isEmpty() ? local : scope + "." + local;
                sources.putIfAbsent(tiedName, sources.get(canonical));
            }
        }
    }

    private TensorSource findSource(String canonical, NodeProto node, boolean linear) {
        if (model.isInitializer(canonical)) {
            return new TensorSource(canonical, false);
        }
        String local = canonical.substring(canonical.lastIndexOf('.') + 1);
        List<String> inits = new ArrayList<>();
        for (String in : node.getInputList()) {
            if (model.isInitializer(in) && OnnxDataType.isKnown(model.initializer(in).getDataType())
                    && model.dataType(in).dtype() != null && model.dataType(in).dtype().isFloatingPoint()) {
                inits.add(in);
            }
        }
        for (String in : inits) {
            if (in.endsWith("." + local)) {
                return new TensorSource(in, false); // equal weights the exporter stored once
            }
        }
        List<String> anonymous = inits.stream().filter(in -> owningModule(in) == null).toList();
        if (linear && (node.getOpType().equals("MatMul") || node.getOpType().equals("Gemm"))) {
            for (String in : anonymous) {
                if (model.dims(in).length == 2) {
                    return new TensorSource(in, true); // Linear weight folded into its transpose
                }
            }
        }
        if (anonymous.size() == 1 && !linear) {
            return new TensorSource(anonymous.get(0), false);
        }
        return null;
    }

    private TensorSpec specOf(TensorSource src) {
        TensorSpec s = model.spec(src.initializer());
        if (!src.transposed()) {
            return s;
        }
        long[] d = s.shape();
        return TensorSpec.of(s.dtype(), d[1], d[0]);
    }

    private TensorSlot register(String owner, String local, TensorSpec spec, boolean parameter, String fullName,
                                TensorSource src) {
        Module m = modules.get(owner);
        if (m == null || m.ownTensors().containsKey(local) || m.children().containsKey(local)) {
            return null;
        }
        TensorSlot slot = parameter ? TensorSlot.parameter(spec) : TensorSlot.buffer(spec, true);
        if (parameter) {
            m.registerParameter(local, slot);
        } else {
            m.registerBuffer(local, slot);
        }
        slotsByName.put(fullName, slot);
        sources.put(fullName, src);
        return slot;
    }

    /** Initializers named like checkpoint tensors ({@code <module path>.<local>}) that nothing claimed yet. */
    private void collectNamedInitializers() {
        Set<String> claimed = new LinkedHashSet<>();
        sources.values().forEach(s -> claimed.add(s.initializer()));
        for (String init : model.initializerNames()) {
            if (claimed.contains(init) || slotsByName.containsKey(init) || !usedByAnyNode(init)) {
                continue;
            }
            String owner = owningModule(init);
            if (owner == null || (owner.isEmpty() && !fromMetadata && !init.contains("."))) {
                continue;
            }
            if (owner.isEmpty()) {
                continue; // val_27-style constants at the root are not tensors of a module
            }
            OnnxDataType t = model.dataType(init);
            if (t.dtype() == null) {
                continue;
            }
            String local = init.substring(owner.length() + 1);
            boolean parameter = t.dtype().isFloatingPoint() || isQuantizationTensor(init);
            register(owner, local, model.spec(init), parameter, init, new TensorSource(init, false));
        }
    }

    private Set<String> usedInitializers;

    private boolean usedByAnyNode(String init) {
        if (usedInitializers == null) {
            usedInitializers = new LinkedHashSet<>();
            for (NodeProto n : model.nodes()) {
                usedInitializers.addAll(OnnxModel.consumedValues(n));
            }
        }
        return usedInitializers.contains(init);
    }

    /** Older exports: {@code MatMul(x, onnx::MatMul_787)} in a Linear's scope is that Linear's weight. */
    private void collectAnonymousMatMulWeights() {
        for (int i = 0; i < model.nodes().size(); i++) {
            NodeProto node = model.node(i);
            if (!node.getOpType().equals("MatMul") || node.getInputCount() < 2) {
                continue;
            }
            String w = node.getInput(1);
            if (!model.isInitializer(w) || owningModule(w) != null || model.dims(w).length != 2
                    || model.dataType(w).dtype() == null || nodeScope[i].isEmpty()) {
                continue;
            }
            TensorSource src = new TensorSource(w, true);
            String full = nodeScope[i] + ".weight";
            register(nodeScope[i], "weight", specOf(src), true, full, src);
        }
    }

    /** Ops of quantised graphs whose initializer inputs are a module's weights, scales and zero points. */
    private static boolean isQuantizationOp(String opType) {
        return opType.equals("MatMulInteger") || opType.equals("ConvInteger") || opType.startsWith("QLinear")
                || opType.equals("DequantizeLinear") || opType.equals("QuantizeLinear")
                || opType.equals("DynamicQuantizeLinear") || opType.equals("QGemm") || opType.equals("QAttention")
                || opType.equals("MatMulIntegerToFloat") || opType.equals("DynamicQuantizeMatMul");
    }

    private static final List<String> QUANT_SUFFIXES = List.of("_quantized", "_scale", "_zero_point");

    private static boolean isQuantizationTensor(String init) {
        return QUANT_SUFFIXES.stream().anyMatch(init::endsWith);
    }

    /**
     * Initializers nothing claimed yet, owned by the module that consumes them: the deepest scope holding every op
     * that reads them. This is how a quantised graph's weights, scales and zero points
     * ({@code onnx::MatMul_787_quantized}, read by a {@code MatMulInteger} and a {@code Mul} in
     * {@code encoder.layer.0.attention.self.query}) belong to their Linear, so that sizes count them and
     * offloading a layer takes them along. Exports with scope metadata only hand over quantisation tensors this
     * way (their other constants are the exporter's, see {@link #collectNamedInitializers}); older exports hand
     * over any initializer whose consumers share a module below the root.
     */
    private void collectByConsumer() {
        Set<String> claimed = new LinkedHashSet<>();
        sources.values().forEach(src -> claimed.add(src.initializer()));
        Map<String, String> scopeOfUse = new LinkedHashMap<>();
        Map<String, Boolean> quantized = new LinkedHashMap<>();
        for (int i = 0; i < model.nodes().size(); i++) {
            NodeProto node = model.node(i);
            boolean quantOp = isQuantizationOp(node.getOpType());
            for (String in : OnnxModel.consumedValues(node)) {
                if (!model.isInitializer(in) || claimed.contains(in)) {
                    continue;
                }
                scopeOfUse.merge(in, nodeScope[i], OnnxModuleTree::commonScope);
                quantized.merge(in, quantOp, Boolean::logicalOr);
            }
        }
        for (Map.Entry<String, String> e : scopeOfUse.entrySet()) {
            String init = e.getKey();
            String owner = e.getValue();
            boolean quant = quantized.get(init) || isQuantizationTensor(init);
            OnnxDataType t = model.dataType(init);
            if (owner.isEmpty() || t.dtype() == null || (fromMetadata && !quant)) {
                continue;
            }
            boolean parameter = t.dtype().isFloatingPoint() || quant;
            for (String local : localNames(init, owner)) {
                if (register(owner, local, model.spec(init), parameter, owner + "." + local,
                        new TensorSource(init, false)) != null) {
                    break;
                }
            }
        }
    }

    /** {@code weight_quantized} for {@code onnx::MatMul_787_quantized} (an anonymous weight), then the name itself. */
    private static List<String> localNames(String init, String owner) {
        List<String> out = new ArrayList<>();
        if (init.startsWith(owner + ".")) {
            out.add(init.substring(owner.length() + 1).replace('.', '_'));
        }
        for (String suffix : QUANT_SUFFIXES) {
            if (init.endsWith(suffix) && init.startsWith("onnx::")) {
                out.add("weight" + suffix);
            }
        }
        out.add(init.replaceAll("[^A-Za-z0-9_]", "_"));
        return out;
    }

    /** The deepest module path containing both scopes. */
    private static String commonScope(String a, String b) {
        String s = a;
        while (!s.isEmpty() && !(b.equals(s) || b.startsWith(s + "."))) {
            int dot = s.lastIndexOf('.');
            s = dot < 0 ? "" : s.substring(0, dot);
        }
        return s;
    }

    /** Module paths that {@code DType} cannot describe are skipped; this lists the tree for debugging. */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        root.visit(m -> {
            sb.append(m.name().isEmpty() ? "<root>" : m.name()).append(" (").append(m.className()).append(')');
            m.ownTensors().forEach((k, s) -> sb.append(' ').append(k).append('=').append(s.spec()));
            sb.append('\n');
        });
        return sb.toString();
    }

    static DType dtypeOf(OnnxDataType t) {
        return t.dtype();
    }
}
