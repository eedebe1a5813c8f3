"""The one harness shared by the tests, replay and the tools (soak, demo). Submodules, imported on their own so that
each pulls in only what it needs:

    frames        synthetic_frame (one frame of a moving square), synthetic_sequence (a clip with exact truth)
    checkpoints   random_checkpoint(path, seed, model): a seeded random-weight checkpoint; TINY_MODEL, tiny_model()
    node_process  NodeProcess: tracker_node as a child process (params file, remaps, log, RSS, clean stop)
    ros_client    RosHost (an rclpy node spinning on its own context and thread), TrackerDriver (a client of a
                  running tracker_node built on it), make_header
    node_session  connected_node: tracker_node started, ready and with a TrackerDriver connected (benchmarks)
    networks      ScriptedNet: a network with hand-set outputs (tests of the tracker's arithmetic)
"""
