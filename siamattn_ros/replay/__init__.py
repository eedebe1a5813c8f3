"""rosbag2 recordings with ground truth: reading/writing bags (pure-Python `rosbags`), replaying them into a live ROS
graph with their original header stamps, recording topics back, and running the tracker node on a recording.

Modules: typestore (message definitions, incl. ours), bag (read/write), truth (ground-truth topic), recording
(a recording's frames + truth), player (replay into ROS), recorder (ROS topics -> bag),
session (tracker_node process on a recording).
"""
