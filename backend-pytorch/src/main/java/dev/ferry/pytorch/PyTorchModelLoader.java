package dev.ferry.pytorch;

import dev.ferry.core.hook.StreamCounter;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.text.ModelText;
import dev.ferry.core.load.LoadRequest;
import dev.ferry.core.load.ModelLoader;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import dev.ferry.tokenizers.DjlTextTokenizer;
import jakarta.inject.Inject;
import java.nio.file.Files;
import java.util.Set;

/**
 * The PyTorch backend's {@link ModelLoader}: builds the family's model from config.json on meta (in the requested
 * dtype), plans or checks the map, and loads the safetensors checkpoint dispatched ({@link CheckpointDispatcher}),
 * the map given once for planning, preload and loading.
 */
public final class PyTorchModelLoader implements ModelLoader {

    private final DjlBackend backend;
    private final CheckpointDispatcher loader;

    @Inject
    public PyTorchModelLoader(DjlBackend backend, CheckpointDispatcher loader) {
        this.backend = backend;
        this.loader = loader;
    }

    @Override
    public DispatchedModel load(LoadRequest request) {
        SafetensorsCheckpoint checkpoint = null;
        try {
            if (!Files.isRegularFile(request.modelDir().resolve("config.json"))) {
                throw new IllegalArgumentException("model folder " + request.modelDir()
                        + " has no config.json; the PyTorch backend builds models from it");
            }
            ModelConfig config = ModelConfig.read(request.modelDir());
            CausalLM lm = ModelFamilies.build(config, backend, request.dtype() == null
                    ? DjlDTypes.residentDType(config.dtype()) : DjlDTypes.residentDType(request.dtype()),
                    request.quantize());
            Set<String> preload = request.preloadClasses(lm);
            DeviceMap map = request.deviceMapFor(lm, backend, true);
            DispatchPlan plan;
            try {
                plan = Dispatcher.plan(lm, map, new PreloadRule(preload));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("device map: " + e.getMessage(), e);
            }
            checkpoint = SafetensorsCheckpoint.open(request.modelDir());
            StreamCounter counter = new StreamCounter();
            DispatchOptions dispatch = DispatchOptions.of(map).withPreloadClasses(preload)
                    .withPrefetchBlocks(request.prefetchBlocks()).withStreamCounter(counter);
            CheckpointDispatcher.Result result = loader.loadAndDispatch(lm,
                    ModelFamilies.checkpointView(lm, checkpoint), plan,
                    CheckpointDispatcher.Options.of(map).withDispatch(dispatch)
                            .withOffloadDir(request.offloadFolder())
                            .withOverwriteOffloadDir(request.overwriteOffloadFolder()));
            Generator generator = new Generator(lm, backend, map.mainDevice(),
                    Generator.tokenizer(request.modelDir()).orElse(null));
            ModelText text = ModelText.of(request.modelDir(), lm.eosTokenIds(), DjlTextTokenizer::open);
            return new PyTorchDispatchedModel(backend, lm, map.resolve(lm), generator, result, checkpoint, counter,
                    text);
        } catch (RuntimeException e) {
            if (checkpoint != null) {
                checkpoint.close();
            }
            backend.close();
            throw e;
        }
    }
}
