"""Session-wide test setup."""

# scikit-learn lists its experimental estimators (HalvingGridSearchCV, HalvingRandomSearchCV) in all_estimators()
# only once this is imported; some tests import it indirectly (sklearn's estimator checks), so import it up front
# and every test sees the same estimator list whatever the order.
import sklearn.experimental.enable_halving_search_cv  # noqa: F401
