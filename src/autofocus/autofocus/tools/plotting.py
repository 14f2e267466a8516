"""Focus curve pictures (matplotlib, no display needed)."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def save_focus_curve(path, positions, sharpness, final_position=None, title='Focus curve'):
    """Plot sharpness against lens position, samples numbered in the order taken."""
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        order = sorted(range(len(positions)), key=lambda i: positions[i])
        axes.plot([positions[i] for i in order], [sharpness[i] for i in order],
                  color='0.7', zorder=1)
        points = axes.scatter(positions, sharpness, c=range(len(positions)), cmap='viridis',
                              zorder=2, label='samples')
        figure.colorbar(points, ax=axes, label='sample order')
        if final_position is not None:
            axes.axvline(final_position, color='crimson', linestyle='--',
                         label=f'final {final_position:.1f}')
        axes.set_xlabel('lens position (motor units)')
        axes.set_ylabel('sharpness')
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(loc='best')
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
