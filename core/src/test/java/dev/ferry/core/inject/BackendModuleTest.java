package dev.ferry.core.inject;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class BackendModuleTest {

    @Test
    void coreAloneHasNoBackendAndSaysSoWhenOneIsAskedFor() {
        assertThat(BackendModule.names()).isEmpty();
        assertThatThrownBy(() -> BackendModule.named("pytorch")).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("no backend 'pytorch'").hasMessageContaining("found none");
    }
}
