"""rosbag2 bags (MCAP or sqlite3): write, flush, split, read, repair, convert.

No rclpy here: messages are handled as serialized CDR bytes (what a raw
subscription gives and a publisher accepts) or as rosbags' own message
objects. The bags are real rosbag2 bags (a folder with metadata.yaml and its
storage files), so `ros2 bag info/play` and Foxglove open them. MCAP files are
written with the mcap library (ros2 profile, as rosbag2's MCAP plugin writes
them), sqlite3 ones with rosbags; everything is read with rosbags and mcap.

Our own interfaces (autofocus_interfaces/msg/*) are registered in the
typestore from their .msg files, so the bag carries their full message
definitions and the same RIHS01 type hashes as the generated code.

Crash safety (measured in test_bags_nodes.py): the recorder splits an MCAP bag
into files of ``split_seconds`` (1 s) like ``ros2 bag record --max-bag-duration``,
finishes each one (summary and footer) before metadata.yaml (replaced
atomically) lists it, and calls :meth:`BagWriter.flush` every ``flush_period``
(0.5 s) to close the open file's pending chunk. A killed recorder thus leaves a
bag any reader opens, missing only the open file (at most ``split_seconds`` of
data); :func:`read_messages` also streams that file's complete chunks (all but
the last ``flush_period``), and :func:`repair` finishes it and lists it. sqlite3
bags commit at every flush instead.
"""

from autofocus.io.bags.format import (  # noqa: F401 - the package's public names
    BagError, DEFAULT_TOPICS, IMAGE_SUFFIXES, IMAGE_TYPE, MCAP_MAGIC, STATE_TYPE, STORAGES,
    VIDEO_SUFFIXES, deserialize, ensure_type, natural_key, serialize, stamp_to_ns, typestore)
from autofocus.io.bags.reader import (  # noqa: F401 - the package's public names
    BagMessage, mcap_is_finished, open_status, read_messages, read_metadata, storage_files,
    topics_of, topics_with_qos, unindexed_files)
from autofocus.io.bags.writer import (  # noqa: F401 - the package's public names
    BagWriter)
from autofocus.io.bags.repair import (  # noqa: F401 - the package's public names
    merge, repair)
from autofocus.io.bags.convert import (  # noqa: F401 - the package's public names
    ConvertReport, DEFAULT_POSITION_PATTERN, convert_main, frames_to_bag, image_files_frames,
    image_message, list_images, motor_state_message, position_from_name, read_image_file,
    read_positions_csv, resize_frame, video_fps, video_frames)
