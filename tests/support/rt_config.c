#include "support/rt_config.h"

void test_rt_config(rt_config *cfg, const char *root) {
    rt_config_defaults(cfg);
    cfg->model_path = root;
    cfg->llm_model = "";
    cfg->whisper_model = "";
    cfg->warm_up = false;
    cfg->hf_endpoint = "http://127.0.0.1:1";
    cfg->progress_bar = false;
    cfg->n_threads = 1;
}
