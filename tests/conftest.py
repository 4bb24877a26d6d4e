"""What every test folder shares; nothing of the study here, so that the library's tests
(tests/library) run where only the library, Keras and one backend are installed."""

# A sitecustomize for subprocesses that must not see TensorFlow (tests/study/test_backends.py);
# imported here by --doctest-modules it would hide TensorFlow from the test process itself.
collect_ignore = ["without_tensorflow"]
