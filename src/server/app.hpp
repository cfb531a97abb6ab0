// server — the composition root: reads the configuration, builds the store, the domain and the
// network, runs them, and shuts them down in order. The only module that names concrete
// backends.
#pragma once

#include "server/config.hpp"

namespace parley::server {

// Runs parleyd until SIGTERM or SIGINT; returns the process exit code. Start-up failures
// throw std::runtime_error with a message for the operator.
int run(const config& cfg);

}  // namespace parley::server
