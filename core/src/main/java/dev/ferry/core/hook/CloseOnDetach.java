package dev.ferry.core.hook;

import dev.ferry.core.module.Module;

/**
 * Ties a resource to a dispatch: closed when the hooks are removed. A dispatch that keeps offloaded weights in
 * page-locked host memory must unlock it when the model is removed, not whenever the collector runs.
 */
public final class CloseOnDetach implements ModelHook {

    private final AutoCloseable resource;

    public CloseOnDetach(AutoCloseable resource) {
        this.resource = resource;
    }

    @Override
    public void detach(Module module) {
        try {
            resource.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing " + resource + " when removing the hooks of '" + module.name()
                    + "' failed", e);
        }
    }

    @Override
    public String toString() {
        return "CloseOnDetach(" + resource + ")";
    }
}
