#include "consumer.h"
uint32_t exports_consumer_run(void) { return demo_greeter_greet_hello(21); }
